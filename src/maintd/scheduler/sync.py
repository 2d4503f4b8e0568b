"""Plan → schedule rows: one per enabled task and target it selects."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session

from maintd.plan.loader import LoadedPlan
from maintd.plan.models import Task
from maintd.plan.schedule import Due, Timing
from maintd.store.models import ScheduleRow


@dataclass(frozen=True)
class SyncResult:
    added: int
    rescheduled: int
    deactivated: int
    unchanged: int


def spec_digest(task: Task) -> str:
    return hashlib.sha256(
        json.dumps(task.schedule.model_dump(mode="json"), sort_keys=True).encode()
    ).hexdigest()


def sync_schedules(session: Session, loaded: LoadedPlan, now: datetime) -> SyncResult:
    """Make the schedule rows match the plan.

    Rows keep their due times across reloads and restarts unless the task's
    schedule changed (or the row was inactive and its time passed); rows of
    tasks no longer in the plan are deactivated, never deleted.
    """
    wanted: dict[tuple[str, str], Task] = {}
    for task in loaded.plan.tasks:
        if task.enabled:
            for target in loaded.plan.targets_of(task):
                wanted[(task.name, target.name)] = task
    existing = {
        (r.task, r.target): r
        for r in session.execute(
            select(
                ScheduleRow.id,
                ScheduleRow.task,
                ScheduleRow.target,
                ScheduleRow.spec,
                ScheduleRow.active,
                ScheduleRow.next_regular,
                ScheduleRow.retry_at,
            )
        )
    }
    # Per schedule object, not per task: tasks on equal schedules share one (plan.base.shared), and
    # a task's targets share its first due time (cron is slow): one digest, one croniter call.
    specs: dict[int, tuple[str, Timing]] = {}
    first_due: dict[int, Due] = {}
    inserts, updates = [], []
    unchanged = 0
    for key, task in wanted.items():
        row = existing.get(key)
        which = id(task.schedule)  # the plan, so every schedule, outlives this call
        if which not in specs:
            specs[which] = (spec_digest(task), task.schedule.timing())
        spec, timing = specs[which]
        if row is not None and row.spec == spec and (row.active or row.next_regular > now):
            if not row.active:
                updates.append({"id": row.id, "active": True})
            else:
                unchanged += 1
            continue
        due = first_due.get(which)
        if due is None:
            due = first_due[which] = timing.first_due(now)
        values = {
            "spec": spec,
            "active": True,
            "next_regular": due.at,
            "window_end": due.window_end,
            "due_at": due.at,
            "retry_at": None,
            "retry_attempt": 0,
            "retry_trigger": None,
        }
        if row is None:
            inserts.append({"task": key[0], "target": key[1], **values})
        else:
            # A pending recovery re-run survives a schedule change: it is owed for the past.
            if row.retry_at is not None:
                values.pop("retry_at"), values.pop("retry_attempt"), values.pop("retry_trigger")
                values["due_at"] = min(due.at, row.retry_at)
            updates.append({"id": row.id, **values})
    deactivate = [{"id": r.id, "active": False} for k, r in existing.items() if r.active and k not in wanted]
    if inserts:
        session.execute(insert(ScheduleRow), inserts)
    if updates or deactivate:
        session.execute(update(ScheduleRow), updates + deactivate)
    return SyncResult(len(inserts), len(updates), len(deactivate), unchanged)
