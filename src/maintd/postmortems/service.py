"""What people do with post-mortems: read, edit, review, complete; draft one on demand.

Keyword-only functions that take the caller's session and only flush; the request
or command owns the transaction. Every change appends one event on the incident's
subject (``incident:ID``), so the post-mortem's life is in the incident's timeline.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from maintd.clock import utc
from maintd.postmortems import drafts
from maintd.postmortems.model import (
    EDITABLE,
    REQUIRED_TO_COMPLETE,
    TIME_FIELDS,
    TRANSITIONS,
    PostmortemEdit,
    PostmortemError,
    PostmortemNotFound,
    PostmortemState,
    PostmortemView,
    postmortem_view,
)
from maintd.store.events import Event, append
from maintd.store.models import IncidentRow, PostmortemActionRow, PostmortemRow

DRAFTABLE = ("resolved", "closed")
_EVENTS = {
    PostmortemState.in_review: "postmortem.in_review",
    PostmortemState.draft: "postmortem.sent_back",
    PostmortemState.complete: "postmortem.completed",
}  # incident states a post-mortem can be drafted in on demand


def load(session: Session, *, incident_id: int, for_update: bool = False) -> PostmortemRow:
    stmt = select(PostmortemRow).where(PostmortemRow.incident_id == incident_id)
    if for_update:
        # Two editors at once on PostgreSQL take turns (SQLite writers are serialised already).
        stmt = stmt.with_for_update().execution_options(populate_existing=True)
    row = session.scalar(stmt)
    if row is None:
        raise PostmortemNotFound(f"incident {incident_id} has no post-mortem")
    return row


def actions_of(session: Session, incident_id: int) -> list[PostmortemActionRow]:
    return list(
        session.scalars(
            select(PostmortemActionRow)
            .where(PostmortemActionRow.incident_id == incident_id)
            .order_by(PostmortemActionRow.id)
        )
    )


def get_postmortem(session: Session, *, incident_id: int) -> PostmortemView:
    """The post-mortem with its action items (oldest first)."""
    return postmortem_view(load(session, incident_id=incident_id), actions_of(session, incident_id))


def list_postmortems(
    session: Session, *, state: PostmortemState | None = None, limit: int = 50, offset: int = 0
) -> list[PostmortemRow]:
    """Newest first."""
    stmt = select(PostmortemRow)
    if state is not None:
        stmt = stmt.where(PostmortemRow.state == state.value)
    return list(
        session.scalars(
            stmt.order_by(PostmortemRow.created_at.desc(), PostmortemRow.id.desc())
            .offset(offset)
            .limit(limit)
        )
    )


def create(session: Session, *, incident_id: int, actor: str, now: datetime) -> PostmortemRow:
    """Draft a post-mortem for a resolved or closed incident of any priority (P0/P1 get one on resolving;
    this is for the others, and for one raised to P0/P1 after it resolved)."""
    incident = session.get(IncidentRow, incident_id)
    if incident is None:
        raise PostmortemNotFound(f"no incident {incident_id}")
    if incident.state not in DRAFTABLE:
        raise PostmortemError(
            f"incident {incident_id} is {incident.state}; its post-mortem is drafted once it is resolved"
        )
    if session.scalar(select(PostmortemRow.id).where(PostmortemRow.incident_id == incident_id)) is not None:
        raise PostmortemError(f"incident {incident_id} has a post-mortem already")
    return drafts.draft(session, incident, actor=actor, now=now)


def edit(
    session: Session, *, incident_id: int, changes: PostmortemEdit, actor: str, now: datetime
) -> PostmortemRow:
    """Change the fields given in ``changes``; a complete post-mortem is final."""
    row = load(session, incident_id=incident_id, for_update=True)
    if row.state == PostmortemState.complete.value:
        raise PostmortemError(f"the post-mortem of incident {incident_id} is complete; it cannot be edited")
    changed: list[str] = []
    for name in sorted(changes.model_fields_set & set(EDITABLE)):
        value: Any = getattr(changes, name)
        if name in TIME_FIELDS:
            value = utc(value) if value is not None else None
        else:
            value = (value or "").strip()
            if name in ("title", "severity") and not value:
                raise PostmortemError(f"{name} cannot be empty")
        if getattr(row, name) != value:
            setattr(row, name, value)
            changed.append(name)
    if not changed:
        raise PostmortemError("nothing to change: every field given has that value already")
    row.updated_at = now
    append(session, Event("postmortem.edited", f"incident:{incident_id}", now, actor, {"fields": changed}))
    return row


def review(session: Session, *, incident_id: int, actor: str, now: datetime, note: str = "") -> PostmortemRow:
    """Draft → in review: the authors ask for a review."""
    return _move(session, incident_id, PostmortemState.in_review, actor, now, note)


def send_back(
    session: Session, *, incident_id: int, actor: str, now: datetime, note: str = ""
) -> PostmortemRow:
    """In review → draft: the review asks for changes (say which in the note)."""
    return _move(session, incident_id, PostmortemState.draft, actor, now, note)


def complete(
    session: Session, *, incident_id: int, actor: str, now: datetime, note: str = ""
) -> PostmortemRow:
    """In review → complete: final; the incident may close now. Needs its root cause written."""
    row = load(session, incident_id=incident_id, for_update=True)
    missing = [name for name in REQUIRED_TO_COMPLETE if not getattr(row, name).strip()]
    if missing and row.state == PostmortemState.in_review.value:
        raise PostmortemError(
            f"the post-mortem of incident {incident_id} cannot be complete without {' and '.join(missing)}"
        )
    _move(session, incident_id, PostmortemState.complete, actor, now, note, row=row)
    row.completed_at = now
    row.completed_by = actor
    return row


def _move(
    session: Session,
    incident_id: int,
    to: PostmortemState,
    actor: str,
    now: datetime,
    note: str,
    row: PostmortemRow | None = None,
) -> PostmortemRow:
    row = row or load(session, incident_id=incident_id, for_update=True)
    current = PostmortemState(row.state)
    if to not in TRANSITIONS[current]:
        allowed = ", ".join(sorted(TRANSITIONS[current])) or "nothing: it is final"
        raise PostmortemError(
            f"the post-mortem of incident {incident_id} is {current}; it can go to {allowed}, not {to}"
        )
    row.state = to.value
    row.updated_at = now
    payload: dict[str, object] = {"from": current.value, "to": to.value}
    if note.strip():
        payload["note"] = note.strip()
    append(session, Event(_EVENTS[to], f"incident:{incident_id}", now, actor, payload))
    return row
