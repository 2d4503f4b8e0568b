"""Read models shared by the API and the CLI: what a task, a run, an event, an incident, an alert
and a silence look like outside."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.orm import Session

from maintd.plan.escalation import EscalationTarget
from maintd.plan.incidents import Matcher
from maintd.store.models import (
    AlertRow,
    EventRow,
    IncidentRow,
    PlanVersionRow,
    RunRow,
    ScheduleRow,
    SilenceRow,
    TimerRow,
)

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


class AlertView(BaseModel):
    id: int
    fingerprint: str
    source: str
    integration: str | None
    status: str
    severity: str
    priority: str
    summary: str
    labels: dict[str, str]
    annotations: dict[str, str]
    starts_at: datetime
    ends_at: datetime | None
    last_received_at: datetime
    received: int
    acknowledged_at: datetime | None
    muted_by: str | None
    incident_id: int | None


class IncidentView(BaseModel):
    id: int
    title: str
    priority: str
    state: str
    opened_at: datetime
    ack_deadline: datetime
    acknowledged_at: datetime | None
    mitigated_at: datetime | None
    resolved_at: datetime | None
    closed_at: datetime | None
    breached_at: datetime | None
    assignee: str | None
    postmortem_required: bool
    labels: dict[str, str]


class TimelineEntry(BaseModel):
    """One event of an incident's timeline: the incident's own (``incident:ID``) or an alert's."""

    id: int
    at: datetime
    kind: str
    subject: str
    actor: str
    payload: dict[str, Any]


class EscalationStep(BaseModel):
    """One page an incident's escalation policy schedules: ``c0.l1`` is cycle 0, level 1."""

    step: str
    level: int  # from 1
    cycle: int  # from 0; the policy's repeats
    round: int  # from 0; one more each time the incident is reopened
    due_at: datetime
    state: str  # pending, fired or cancelled
    fired_at: datetime | None
    cancelled_at: datetime | None


class EscalationView(BaseModel):
    """The policy as it was when the incident opened (``levels``: after, notify) and its steps."""

    policy: str
    levels: list[dict[str, Any]]
    repeat: int
    steps: list[EscalationStep]


class IncidentDetail(IncidentView):
    alerts: list[AlertView]
    timeline: list[TimelineEntry]
    escalation: EscalationView | None = None  # None: no policy pages for it


class SilenceView(BaseModel):
    id: int
    matchers: list[str]
    starts_at: datetime
    ends_at: datetime
    state: str  # pending, active or expired
    created_by: str
    created_at: datetime
    comment: str


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


RUN_STATUSES = ("ok", "warning", "critical", "unknown", "running")  # what runs(status=) filters on


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


def incident_view(row: IncidentRow) -> IncidentView:
    return IncidentView.model_validate(row, from_attributes=True)


def incident_detail(
    row: IncidentRow, alerts: list[AlertRow], timeline: list[EventRow], steps: Sequence[TimerRow] = ()
) -> IncidentDetail:
    return IncidentDetail(
        **incident_view(row).model_dump(),
        alerts=[alert_view(a) for a in alerts],
        timeline=[TimelineEntry.model_validate(e, from_attributes=True) for e in timeline],
        escalation=escalation_view(row, steps),
    )


def escalation_view(row: IncidentRow, steps: Sequence[TimerRow]) -> EscalationView | None:
    if row.escalation_policy is None:
        return None
    policy = row.escalation or {}
    return EscalationView(
        policy=row.escalation_policy,
        levels=[
            {
                "after": level.get("after"),
                "notify": [str(EscalationTarget.model_validate(t)) for t in level["notify"]],
            }
            for level in policy.get("levels", [])
        ],
        repeat=int(policy.get("repeat", 0)),
        steps=[
            EscalationStep(
                step=t.step,
                level=int(t.payload.get("level", 0)) + 1,
                cycle=int(t.payload.get("cycle", 0)),
                round=int(t.payload.get("round", 0)),
                due_at=t.due_at,
                state="fired" if t.fired_at else "cancelled" if t.cancelled_at else "pending",
                fired_at=t.fired_at,
                cancelled_at=t.cancelled_at,
            )
            for t in steps
        ],
    )


def alert_view(row: AlertRow) -> AlertView:
    return AlertView.model_validate(row, from_attributes=True)


def alerts(
    session: Session,
    *,
    status: str | None = None,
    incident: int | None = None,
    fingerprint: str | None = None,
    since: datetime | None = None,
    limit: int = 50,
    offset: int = 0,
) -> list[AlertView]:
    """Newest first; ``since`` compares with ``starts_at``."""
    stmt = select(AlertRow)
    if status:
        stmt = stmt.where(AlertRow.status == status)
    if incident is not None:
        stmt = stmt.where(AlertRow.incident_id == incident)
    if fingerprint:
        stmt = stmt.where(AlertRow.fingerprint == fingerprint)
    if since:
        stmt = stmt.where(AlertRow.starts_at >= since)
    stmt = stmt.order_by(AlertRow.id.desc()).offset(offset).limit(min(limit, MAX_LIMIT))
    return [alert_view(r) for r in session.scalars(stmt)]


def silence_view(row: SilenceRow, now: datetime) -> SilenceView:
    state = "pending" if now < row.starts_at else "active" if now < row.ends_at else "expired"
    return SilenceView(
        id=row.id,
        matchers=[str(Matcher.model_validate(m)) for m in row.matchers],
        starts_at=row.starts_at,
        ends_at=row.ends_at,
        state=state,
        created_by=row.created_by,
        created_at=row.created_at,
        comment=row.comment,
    )


def silences(
    session: Session, *, now: datetime, include_expired: bool = False, limit: int = 100, offset: int = 0
) -> list[SilenceView]:
    """Pending and active silences (and expired ones too when asked), newest first."""
    stmt = select(SilenceRow)
    if not include_expired:
        stmt = stmt.where(SilenceRow.ends_at > now)
    stmt = stmt.order_by(SilenceRow.id.desc()).offset(offset).limit(min(limit, MAX_LIMIT))
    return [silence_view(r, now) for r in session.scalars(stmt)]
