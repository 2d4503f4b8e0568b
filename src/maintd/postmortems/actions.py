"""Action items: who does what by when; reminded on timers until done; done on time or late.

Completing one appends ``postmortem.action.completed`` with ``on_time`` (done before
the end of its due day, UTC): the KPI "post-mortem actions completed on time" reads it.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import date, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from maintd.plan.postmortems import PostmortemSettings
from maintd.postmortems import reminders
from maintd.postmortems.model import ActionStatus, PostmortemError, PostmortemNotFound
from maintd.postmortems.service import load
from maintd.store.events import Event, append
from maintd.store.models import PostmortemActionRow


def get_action(session: Session, *, action_id: int, for_update: bool = False) -> PostmortemActionRow:
    row = session.get(
        PostmortemActionRow, action_id, with_for_update=for_update, populate_existing=for_update
    )
    if row is None:
        raise PostmortemNotFound(f"no post-mortem action {action_id}")
    return row


def add_action(
    session: Session,
    *,
    incident_id: int,
    title: str,
    owner: str,
    due_on: date,
    people: Collection[str],
    settings: PostmortemSettings,
    actor: str,
    now: datetime,
) -> PostmortemActionRow:
    """A new open item on the incident's post-mortem, with its reminder timers (flushes)."""
    load(session, incident_id=incident_id)  # the post-mortem exists
    title = _title(title)
    _check_owner(owner, people)
    _check_due(due_on, now)
    row = PostmortemActionRow(
        incident_id=incident_id,
        title=title,
        owner=owner,
        due_on=due_on,
        status=ActionStatus.open.value,
        created_at=now,
        created_by=actor,
    )
    session.add(row)
    session.flush()
    reminders.schedule(session, row, settings=settings, now=now)
    payload = {"action": row.id, "title": title, "owner": owner, "due_on": due_on.isoformat()}
    append(session, Event("postmortem.action.added", f"incident:{incident_id}", now, actor, payload))
    return row


def update_action(
    session: Session,
    *,
    action_id: int,
    people: Collection[str],
    settings: PostmortemSettings,
    actor: str,
    now: datetime,
    title: str | None = None,
    owner: str | None = None,
    due_on: date | None = None,
    status: ActionStatus | None = None,
) -> PostmortemActionRow:
    """Change what is given. A new owner or due date re-sets the reminders; done and cancelled are final."""
    row = get_action(session, action_id=action_id, for_update=True)
    if row.status != ActionStatus.open.value:
        raise PostmortemError(f"post-mortem action {action_id} is {row.status}; it cannot change any more")
    changed: dict[str, object] = {}
    if title is not None and _title(title) != row.title:
        row.title = changed["title"] = _title(title)
    if owner is not None and owner != row.owner:
        _check_owner(owner, people)
        row.owner = changed["owner"] = owner
    if due_on is not None and due_on != row.due_on:
        _check_due(due_on, now)
        row.due_on = due_on
        changed["due_on"] = due_on.isoformat()
    if status is not None and status is not ActionStatus.open:
        return _finish(session, row, status, actor, now, changed)
    if not changed:
        raise PostmortemError(f"nothing to change: post-mortem action {action_id} is like that already")
    if "due_on" in changed:
        reminders.cancel(session, row, now=now)
        reminders.schedule(session, row, settings=settings, now=now)
    payload = {"action": row.id, **changed}
    append(session, Event("postmortem.action.changed", f"incident:{row.incident_id}", now, actor, payload))
    return row


def _finish(
    session: Session,
    row: PostmortemActionRow,
    status: ActionStatus,
    actor: str,
    now: datetime,
    changed: dict[str, object],
) -> PostmortemActionRow:
    row.status = status.value
    reminders.cancel(session, row, now=now)
    payload: dict[str, object] = {"action": row.id, "title": row.title, "owner": row.owner, **changed}
    payload["due_on"] = row.due_on.isoformat()
    if status is ActionStatus.done:
        row.completed_at = now
        row.on_time = now < reminders.deadline(row.due_on)
        payload["on_time"] = row.on_time
        kind = "postmortem.action.completed"
    else:
        kind = "postmortem.action.cancelled"
    append(session, Event(kind, f"incident:{row.incident_id}", now, actor, payload))
    return row


def _title(title: str) -> str:
    title = title.strip()
    if not title:
        raise PostmortemError("an action item needs a title")
    return title


def _check_owner(owner: str, people: Collection[str]) -> None:
    if owner not in people:
        known = ", ".join(sorted(people)) or "none: the active plan has no people"
        raise PostmortemError(f"{owner!r} is not a person of the active plan (people: {known})")


def _check_due(due_on: date, now: datetime) -> None:
    if due_on < now.date():
        raise PostmortemError(
            f"the due date {due_on.isoformat()} has passed (today is {now.date().isoformat()}, UTC)"
        )


def list_actions(
    session: Session,
    *,
    status: ActionStatus | None = None,
    owner: str | None = None,
    incident_id: int | None = None,
    limit: int = 100,
    offset: int = 0,
) -> list[PostmortemActionRow]:
    """By due date, earliest first."""
    stmt = select(PostmortemActionRow)
    if status is not None:
        stmt = stmt.where(PostmortemActionRow.status == status.value)
    if owner is not None:
        stmt = stmt.where(PostmortemActionRow.owner == owner)
    if incident_id is not None:
        stmt = stmt.where(PostmortemActionRow.incident_id == incident_id)
    stmt = stmt.order_by(PostmortemActionRow.due_on, PostmortemActionRow.id).offset(offset).limit(limit)
    return list(session.scalars(stmt))
