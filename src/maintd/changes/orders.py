"""Asking a change to execute or to roll back: the change freeze, and the steps' timers.

Keyword-only functions that take the caller's session and only flush, like
maintd.changes.service; the steps themselves are maintd.changes.executor's.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from maintd import timers
from maintd.auth import Principal, Role
from maintd.changes.model import KIND, ChangeError, ChangeForbidden, ChangeFrozen, ChangeState, subject
from maintd.changes.service import change_type, load, move
from maintd.incidents.states import OPEN
from maintd.plan.changes import ChangeSettings
from maintd.store.events import Event, append
from maintd.store.models import ChangeRow, IncidentRow


def freeze_blockers(session: Session, settings: ChangeSettings) -> list[IncidentRow]:
    """The open incidents that freeze changes now."""
    return list(
        session.scalars(
            select(IncidentRow)
            .where(
                IncidentRow.state.in_([s.value for s in OPEN]),
                IncidentRow.priority.in_(settings.freeze_priorities),
            )
            .order_by(IncidentRow.id)
        )
    )


def request_execution(
    session: Session,
    *,
    change_id: int,
    who: Principal,
    settings: ChangeSettings,
    now: datetime,
    override_reason: str | None = None,
) -> ChangeRow:
    """Approved → executing: the worker's ``execute`` step is due now. Refused while open incidents
    freeze changes, unless the type is exempt or a director overrides with a reason (recorded)."""
    row = load(session, change_id, for_update=True)
    if row.state != ChangeState.approved.value:
        raise ChangeError(f"change {change_id} is {row.state}; only an approved change can be executed")
    kind = change_type(settings, row)
    blockers = [] if kind.freeze_exempt else freeze_blockers(session, settings)
    override: dict[str, Any] | None = None
    if blockers:
        listed = ", ".join(f"#{i.id} ({i.priority}) {i.title}" for i in blockers[:5])
        if override_reason is None or not override_reason.strip():
            raise ChangeFrozen(
                f"changes are frozen while incidents are open: {listed}; "
                "a director may override, with a reason"
            )
        if not who.role.allows(Role.director):
            raise ChangeForbidden(
                f"overriding the change freeze needs the director role; {who.name} is {who.role.value}"
            )
        override = {
            "by": who.name,
            "reason": override_reason.strip(),
            "incidents": [i.id for i in blockers],
            "at": now.isoformat(),
        }
        append(session, Event("change.freeze_overridden", subject(row.id), now, who.actor, override))
    row.freeze_override = override
    row.executions += 1
    move(session, row, ChangeState.executing, who.actor, now, execution=row.executions)
    schedule_step(session, row, f"execute.{row.executions}", now, now)
    return row


def request_rollback(
    session: Session, *, change_id: int, who: Principal, now: datetime, reason: str = ""
) -> ChangeRow:
    """Watching (or failed) → rolling back: the health watch stops, the worker's rollback step is due now."""
    row = load(session, change_id, for_update=True)
    if row.state not in (ChangeState.watching.value, ChangeState.failed.value):
        # While executing, its own step decides (a failing apply or canary rolls back by itself).
        raise ChangeError(
            f"change {change_id} is {row.state}; only a watched or failed change can be rolled back"
        )
    start_rollback(session, row, actor=who.actor, now=now, reason=reason.strip() or f"asked by {who.name}")
    return row


def start_rollback(session: Session, row: ChangeRow, *, actor: str, now: datetime, reason: str) -> None:
    move(session, row, ChangeState.rolling_back, actor, now, reason=reason)
    row.outcome = reason
    row.rollbacks += 1
    timers.cancel(session, subject=subject(row.id), kind=KIND, now=now)
    schedule_step(session, row, f"rollback.{row.rollbacks}", now, now)


def schedule_step(session: Session, row: ChangeRow, step: str, due_at: datetime, now: datetime) -> bool:
    return timers.schedule(
        session,
        kind=KIND,
        subject=subject(row.id),
        step=step,
        due_at=due_at,
        payload={"change": row.id},
        now=now,
    )
