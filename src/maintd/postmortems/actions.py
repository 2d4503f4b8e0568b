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
from maintd.postmortems.items import Items
from maintd.postmortems.model import ActionStatus, PostmortemError, PostmortemNotFound
from maintd.postmortems.service import load
from maintd.store.models import PostmortemActionRow

ITEMS = Items(
    chain=reminders.ACTIONS,
    noun="post-mortem action",
    a_title="an action item",
    events="postmortem.action",
    error=PostmortemError,
    subject=lambda row: f"incident:{row.incident_id}",
)


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
    title = ITEMS.check_new(title, owner, due_on, people, now)
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
    return ITEMS.added(session, row, settings, actor, now)


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
    return ITEMS.change(
        session, row, people=people, settings=settings, actor=actor, now=now,
        title=title, owner=owner, due_on=due_on, status=status,
    )  # fmt: skip


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
