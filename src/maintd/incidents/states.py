"""The incident state machine: an explicit table, every transition an event."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from datetime import datetime
from enum import StrEnum
from functools import cache
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from maintd.incidents.escalation import follow_transition
from maintd.store.events import Event, append
from maintd.store.models import IncidentRow, PostmortemRow


class State(StrEnum):
    triggered = "triggered"
    acknowledged = "acknowledged"
    mitigated = "mitigated"
    resolved = "resolved"
    closed = "closed"


OPEN = (State.triggered, State.acknowledged, State.mitigated)

TRANSITIONS: dict[State, frozenset[State]] = {
    State.triggered: frozenset({State.acknowledged, State.mitigated, State.resolved}),
    State.acknowledged: frozenset({State.triggered, State.mitigated, State.resolved}),
    State.mitigated: frozenset({State.triggered, State.resolved}),
    State.resolved: frozenset({State.triggered, State.closed}),
    State.closed: frozenset(),
}

# The column each state stamps when entered.
_STAMP = {
    State.acknowledged: "acknowledged_at",
    State.mitigated: "mitigated_at",
    State.resolved: "resolved_at",
    State.closed: "closed_at",
}


# Rooms after incidents in the flow that act on a transition in its transaction (the post-mortem
# draft of a resolved P0/P1), by name and imported when first needed, as registry.BUILTIN_KINDS
# does: this room never imports them. Each takes the arguments of escalation.follow_transition.
FOLLOWERS = ("maintd.postmortems.drafts:follow_transition",)


@cache
def _followers() -> tuple[Callable[..., Any], ...]:
    found = []
    for name in FOLLOWERS:
        module, _, attr = name.partition(":")
        found.append(getattr(importlib.import_module(module), attr))
    return tuple(found)


class IncidentError(Exception):
    """A request the incident's state or rules do not allow; the message says why."""


def subject(incident_id: int) -> str:
    return f"incident:{incident_id}"


def transition(
    session: Session,
    incident: IncidentRow,
    to: State,
    *,
    actor: str,
    now: datetime,
    note: str = "",
    waive_postmortem: bool = False,
    events: list[Event] | None = None,
    via: str | None = None,
) -> None:
    """Move ``incident`` to ``to`` (flushes; the caller commits) or raise IncidentError.

    The event goes to ``events`` when given (to keep a batch's events in order), else to the session.
    ``via`` says how a person did it when not through the API or CLI (``link``: a notification link).
    """
    current = State(incident.state)
    if to not in TRANSITIONS[current]:
        allowed = ", ".join(sorted(TRANSITIONS[current])) or "nothing: it is closed"
        raise IncidentError(f"incident {incident.id} is {current}; it can go to {allowed}, not {to}")
    if to is State.closed and incident.postmortem_required and not waive_postmortem:
        postmortem = session.scalar(
            select(PostmortemRow.state).where(PostmortemRow.incident_id == incident.id)
        )
        if postmortem != "complete":
            where = f"its post-mortem is {postmortem}" if postmortem else "it has no post-mortem yet"
            raise IncidentError(
                f"incident {incident.id} is {incident.priority}: a post-mortem is required before closing it"
                f" ({where}; complete it, or waive it)"
            )
    incident.state = to.value
    if to in _STAMP and getattr(incident, _STAMP[to]) is None:
        setattr(incident, _STAMP[to], now)
    if to is State.triggered:  # reopened or un-acknowledged: the clock runs again from its start
        incident.resolved_at = None
    payload: dict[str, object] = {"from": current.value, "to": to.value}
    if note:
        payload["note"] = note
    if via:
        payload["via"] = via
    if to is State.closed and waive_postmortem and incident.postmortem_required:
        payload["postmortem_waived"] = True
    event = Event(f"incident.{to.value}", subject(incident.id), now, actor, payload)
    if events is None:
        append(session, event)
    else:
        events.append(event)
    follow_transition(session, incident, was=current.value, to=to.value, actor=actor, now=now, events=events)
    for follow in _followers():
        follow(session, incident, was=current.value, to=to.value, actor=actor, now=now, events=events)
