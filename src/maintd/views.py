"""Read models shared by the API and the CLI: what a task, a run and an event look like outside."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.orm import Session

from maintd.store.models import EventRow, PlanVersionRow, RunRow, ScheduleRow

MAX_LIMIT = 1000


class TargetState(BaseModel):
    target: str
    next_due: datetime | None
    window_end: datetime | None
    running_run_id: str | None
    last_status: str | None
    last_run_id: str | None
    last_finished_at: datetime | None
    retry_at: datetime | None


class TaskView(BaseModel):
    name: str
    kind: str
    description: str
    schedule: dict[str, Any]
    preventive: bool
    enabled: bool
    targets: list[TargetState]


class RunView(BaseModel):
    id: str
    task: str
    target: str
    kind: str
    trigger: str
    attempt: int
    scheduled_for: datetime
    started_at: datetime
    finished_at: datetime | None
    state: str
    status: str | None
    stop_reason: str | None
    in_window: bool
    dry_run: bool
    duration_ms: float | None
    output: str
    metrics: dict[str, float]


class EventView(BaseModel):
    id: int
    at: datetime
    kind: str
    subject: str
    actor: str
    payload: dict[str, Any]


class PlanView(BaseModel):
    digest: str
    loaded_at: datetime
    source: str
    document: dict[str, Any]


def active_plan(session: Session) -> PlanVersionRow | None:
    return session.scalar(select(PlanVersionRow).order_by(PlanVersionRow.id.desc()).limit(1))


def tasks(session: Session, name: str | None = None) -> list[TaskView]:
    plan = active_plan(session)
    if plan is None:
        return []
    stmt = select(ScheduleRow).where(ScheduleRow.active).order_by(ScheduleRow.task, ScheduleRow.target)
    if name:
        stmt = stmt.where(ScheduleRow.task == name)
    by_task: dict[str, list[TargetState]] = {}
    for row in session.scalars(stmt):
        by_task.setdefault(row.task, []).append(
            TargetState(
                target=row.target,
                next_due=row.due_at,
                window_end=row.window_end,
                running_run_id=row.running_run_id,
                last_status=row.last_status,
                last_run_id=row.last_run_id,
                last_finished_at=row.last_finished_at,
                retry_at=row.retry_at,
            )
        )
    out = []
    for task in plan.document.get("tasks", []):
        if name and task["name"] != name:
            continue
        out.append(
            TaskView(
                name=task["name"],
                kind=task["kind"],
                description=task.get("description", ""),
                schedule={k: v for k, v in task["schedule"].items() if v is not None},
                preventive=task.get("preventive", True),
                enabled=task.get("enabled", True),
                targets=by_task.get(task["name"], []),
            )
        )
    return out


def runs(
    session: Session,
    *,
    task: str | None = None,
    target: str | None = None,
    status: str | None = None,
    since: datetime | None = None,
    before: datetime | None = None,
    limit: int = 50,
) -> list[RunView]:
    """Newest first; page backwards with ``before`` = the last ``started_at`` seen."""
    stmt = select(RunRow)
    if task:
        stmt = stmt.where(RunRow.task == task)
    if target:
        stmt = stmt.where(RunRow.target == target)
    if status:
        stmt = (
            stmt.where(RunRow.status == status)
            if status != "running"
            else stmt.where(RunRow.state == "running")
        )
    if since:
        stmt = stmt.where(RunRow.started_at >= since)
    if before:
        stmt = stmt.where(RunRow.started_at < before)
    stmt = stmt.order_by(RunRow.started_at.desc(), RunRow.id.desc()).limit(min(limit, MAX_LIMIT))
    return [run_view(r) for r in session.scalars(stmt)]


def run_view(row: RunRow) -> RunView:
    return RunView.model_validate(row, from_attributes=True)


def event_view(row: EventRow) -> EventView:
    return EventView.model_validate(row, from_attributes=True)
