"""What people do with incidents: find, read, acknowledge ... close, assign, annotate, reprioritise.

Keyword-only functions that take the caller's session and only flush; the
request or command owns the transaction. Every change appends one event with
its actor and note. A refusal is an IncidentError whose message says why
(IncidentNotFound for an unknown id).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from maintd.incidents.escalation import KIND as ESCALATE
from maintd.incidents.pipeline import settle_breach
from maintd.incidents.states import OPEN, IncidentError, State, subject, transition
from maintd.plan.incidents import IncidentSettings, Priority
from maintd.store.events import Event, append
from maintd.store.models import AlertRow, EventRow, IncidentRow, PlanVersionRow, TimerRow
from maintd.timers import of_subject

OPEN_FILTER = "open"  # a state filter meaning triggered, acknowledged or mitigated
STATE_FILTERS = (OPEN_FILTER, *(s.value for s in State))
POSTMORTEM_PRIORITIES = (Priority.P0, Priority.P1)


class IncidentNotFound(IncidentError, LookupError):
    """No incident has that id."""


@dataclass(frozen=True)
class IncidentDetail:
    incident: IncidentRow
    alerts: list[AlertRow]
    timeline: list[EventRow]  # its events and its alerts' events, oldest first
    steps: list[TimerRow] = field(default_factory=list)  # its escalation steps, by due time


def stored_settings(session: Session) -> IncidentSettings:
    """The incident settings of the active plan in the store (the defaults when none was loaded)."""
    plan = session.scalar(select(PlanVersionRow).order_by(PlanVersionRow.id.desc()).limit(1))
    if plan is None:
        return IncidentSettings()
    return IncidentSettings.model_validate(plan.document.get("incidents") or {})


# -- reading ---------------------------------------------------------------


def list_incidents(
    session: Session,
    *,
    state: str | None = None,
    priority: Priority | None = None,
    since: datetime | None = None,
    limit: int = 50,
    offset: int = 0,
) -> Sequence[IncidentRow]:
    """Newest first. ``state`` is a state or ``open``; ``since`` compares with ``opened_at``."""
    stmt = select(IncidentRow)
    if state == OPEN_FILTER:
        stmt = stmt.where(IncidentRow.state.in_([s.value for s in OPEN]))
    elif state is not None:
        if state not in STATE_FILTERS:
            raise ValueError(f"unknown state {state!r}: use {', '.join(STATE_FILTERS)}")
        stmt = stmt.where(IncidentRow.state == state)
    if priority is not None:
        stmt = stmt.where(IncidentRow.priority == priority.value)
    if since is not None:
        stmt = stmt.where(IncidentRow.opened_at >= since)
    stmt = stmt.order_by(IncidentRow.opened_at.desc(), IncidentRow.id.desc()).offset(offset).limit(limit)
    return session.scalars(stmt).all()


def get_incident(session: Session, *, incident_id: int) -> IncidentDetail:
    """The incident, its alerts (oldest first) and its timeline."""
    incident = _load(session, incident_id)
    alerts = list(
        session.scalars(select(AlertRow).where(AlertRow.incident_id == incident_id).order_by(AlertRow.id))
    )
    subjects = [subject(incident_id), *(f"alert:{a.id}" for a in alerts)]
    timeline = list(
        session.scalars(
            select(EventRow).where(EventRow.subject.in_(subjects)).order_by(EventRow.at, EventRow.id)
        )
    )
    steps = [t for t in of_subject(session, subject(incident_id)) if t.kind == ESCALATE]
    return IncidentDetail(incident, alerts, timeline, steps)


# -- state changes ----------------------------------------------------------


def acknowledge(
    session: Session,
    *,
    incident_id: int,
    actor: str,
    now: datetime,
    settings: IncidentSettings,
    note: str = "",
    via: str | None = None,
) -> IncidentRow:
    """Someone is on it: the response deadline is met."""
    return _move(session, incident_id, State.acknowledged, actor, now, settings, note, via=via)


def mitigate(
    session: Session,
    *,
    incident_id: int,
    actor: str,
    now: datetime,
    settings: IncidentSettings,
    note: str = "",
) -> IncidentRow:
    """The impact is contained; the cause may still be there."""
    return _move(session, incident_id, State.mitigated, actor, now, settings, note)


def resolve(
    session: Session,
    *,
    incident_id: int,
    actor: str,
    now: datetime,
    settings: IncidentSettings,
    note: str = "",
    via: str | None = None,
) -> IncidentRow:
    return _move(session, incident_id, State.resolved, actor, now, settings, note, via=via)


def reopen(
    session: Session,
    *,
    incident_id: int,
    actor: str,
    now: datetime,
    settings: IncidentSettings,
    note: str = "",
) -> IncidentRow:
    """Back to triggered (from acknowledged, mitigated or resolved), with a fresh response deadline.

    The new deadline counts from now, and it can be breached again (``breached_at`` is cleared;
    the earlier breach stays in the timeline).
    """
    incident = _move(session, incident_id, State.triggered, actor, now, settings, note)
    incident.ack_deadline = now + settings.deadlines[Priority(incident.priority)]
    incident.breached_at = None
    return incident


def close(
    session: Session,
    *,
    incident_id: int,
    actor: str,
    now: datetime,
    settings: IncidentSettings,
    note: str = "",
    waive_postmortem: bool = False,
) -> IncidentRow:
    """Resolved → closed. P0/P1 need their post-mortem first, unless it is waived (the event says so).

    Who may waive is the edge's business (manager or above); this records it, and wants the reason.
    """
    if waive_postmortem and not note.strip() and _load(session, incident_id).postmortem_required:
        raise IncidentError(f"incident {incident_id}: say why its post-mortem is waived (add a note)")
    return _move(session, incident_id, State.closed, actor, now, settings, note, waive_postmortem)


# -- other changes ----------------------------------------------------------


def assign(
    session: Session, *, incident_id: int, assignee: str, actor: str, now: datetime, note: str = ""
) -> IncidentRow:
    assignee = assignee.strip()
    if not assignee:
        raise IncidentError("say who: the assignee is empty")
    incident = _load(session, incident_id, for_update=True)
    _refuse_closed(incident, "reassigned")
    if incident.assignee == assignee:
        raise IncidentError(f"incident {incident_id} is already assigned to {assignee}")
    payload = _with_note({"from": incident.assignee, "to": assignee}, note)
    incident.assignee = assignee
    append(session, Event("incident.assigned", subject(incident_id), now, actor, payload))
    return incident


def add_note(session: Session, *, incident_id: int, note: str, actor: str, now: datetime) -> IncidentRow:
    """A line in the timeline; closed incidents take notes too (post-mortem findings)."""
    if not note.strip():
        raise IncidentError("a note needs some text")
    incident = _load(session, incident_id)
    append(session, Event("incident.note", subject(incident_id), now, actor, {"note": note.strip()}))
    return incident


def change_priority(
    session: Session,
    *,
    incident_id: int,
    priority: Priority,
    actor: str,
    now: datetime,
    settings: IncidentSettings,
    note: str = "",
) -> IncidentRow:
    """Reclassify. While still triggered, the response deadline becomes the new priority's, counted
    from when it was (re)triggered; a post-mortem becomes required at P0/P1 and stays required."""
    incident = _load(session, incident_id, for_update=True)
    _refuse_closed(incident, "reprioritised")
    old = Priority(incident.priority)
    if old is priority:
        raise IncidentError(f"incident {incident_id} is already {priority}")
    payload: dict[str, object] = {"from": old.value, "to": priority.value}
    incident.priority = priority.value
    if incident.state == State.triggered.value:
        incident.ack_deadline = _triggered_at(session, incident) + settings.deadlines[priority]
        payload["ack_deadline"] = incident.ack_deadline.isoformat()
    if priority in POSTMORTEM_PRIORITIES and not incident.postmortem_required:
        incident.postmortem_required = True
        payload["postmortem_required"] = True
    append(session, Event("incident.priority", subject(incident_id), now, actor, _with_note(payload, note)))
    return incident


# -- helpers ------------------------------------------------------------------


def _load(session: Session, incident_id: int, *, for_update: bool = False) -> IncidentRow:
    # FOR UPDATE: two responders acting at once on PostgreSQL take turns, so the second sees
    # the first one's state (SQLite writers are serialised already).
    incident = session.get(IncidentRow, incident_id, with_for_update=for_update, populate_existing=for_update)
    if incident is None:
        raise IncidentNotFound(f"no incident {incident_id}")
    return incident


def _move(
    session: Session,
    incident_id: int,
    to: State,
    actor: str,
    now: datetime,
    settings: IncidentSettings,
    note: str,
    waive_postmortem: bool = False,
    via: str | None = None,
) -> IncidentRow:
    incident = _load(session, incident_id, for_update=True)
    was = State(incident.state)
    transition(
        session,
        incident,
        to,
        actor=actor,
        now=now,
        note=note.strip(),
        waive_postmortem=waive_postmortem,
        via=via,
    )
    if was is State.triggered:
        # Answered: the alert maintd raised for a missed deadline has done its job.
        settle_breach(session, incident, now=now, settings=settings, actor=actor)
    return incident


def _refuse_closed(incident: IncidentRow, what: str) -> None:
    if incident.state == State.closed.value:
        raise IncidentError(f"incident {incident.id} is closed; it cannot be {what}")


def _triggered_at(session: Session, incident: IncidentRow) -> datetime:
    """When the incident last became triggered: its reopening, else its opening."""
    reopened = session.scalar(
        select(func.max(EventRow.at)).where(
            EventRow.subject == subject(incident.id), EventRow.kind == f"incident.{State.triggered.value}"
        )
    )
    return reopened or incident.opened_at


def _with_note(payload: dict[str, object], note: str) -> dict[str, object]:
    if note.strip():
        payload["note"] = note.strip()
    return payload
