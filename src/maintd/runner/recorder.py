"""Writing finished runs back: the run row, the schedule row (free again, retry
armed, last status) and the events for state changes, in one transaction."""

from __future__ import annotations

import json
import logging
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import Table, select
from sqlalchemy.orm import Session

from maintd.checks.base import MEMO_LIMIT, CheckResult, RunSample, Status
from maintd.scheduler.orders import RunOrder, Trigger
from maintd.store import events as event_log
from maintd.store.bulk import insert_rows, select_by_ids, update_by_id
from maintd.store.events import Event, append, task_subject
from maintd.store.models import EventRow, RunRow, ScheduleRow

ACTOR = "runner"
log = logging.getLogger(__name__)
RUNS: Table = RunRow.__table__  # type: ignore[assignment]
SCHEDULES: Table = ScheduleRow.__table__  # type: ignore[assignment]
EVENTS: Table = EventRow.__table__  # type: ignore[assignment]


# Finished and Streak are NamedTuples, not frozen dataclasses, for the cost of making one per run
# (see RunOrder).
class Finished(NamedTuple):
    order: RunOrder
    result: CheckResult
    state: str  # finished | interrupted
    stop_reason: str | None  # timeout | overrun | shutdown | error | None
    finished_at: datetime
    duration_ms: float


class Streak(NamedTuple):
    """How many non-ok runs in a row a task had on a target, before and after one finished run."""

    finished: Finished
    before: int
    after: int
    previous: str | None = None  # the status of the run before, to see a failure get worse


@dataclass(frozen=True)
class Recorded:
    """What storing a batch changed: failure streaks (for alerting) and when the freed rows are due."""

    streaks: list[Streak]
    next_due: datetime | None  # the earliest due time of the schedule rows the batch freed


def record(session: Session, batch: list[Finished]) -> Recorded:
    """Store a batch of finished runs (run rows, schedule rows, events); flushes only.

    Returns the failure streaks the batch changed or continued, for alerting, and
    the earliest due time among the schedule rows it made free again.
    """
    update_by_id(
        session,
        RUNS,
        [
            {
                "id": f.order.run_id,
                "finished_at": f.finished_at,
                "state": f.state,
                "status": f.result.status.value,
                "stop_reason": f.stop_reason,
                "output": f.result.output,
                "metrics": f.result.metrics,
                "duration_ms": round(f.duration_ms, 3),
            }
            for f in batch
        ],
    )
    # Plain tuples (see claims.claim_due: a Row's attribute lookup is slow).
    held = select_by_ids(session, SCHEDULES, _Held._fields, [f.order.schedule_id for f in batch])
    rows = {r[0]: _Held._make(r) for r in held}
    changes, events, streaks = [], [], []
    next_due: datetime | None = None
    for f in batch:
        if f.result.changes:
            events.append(_audit(f))
        row = rows.get(f.order.schedule_id)
        if row is None or row.running_run_id != f.order.run_id:
            continue  # recovered meanwhile by someone else: the run row is all we own
        values, row_events = _schedule_update(f, row.last_status, row.next_regular)
        if (memo := _memo(f)) is not None:
            values["memo"] = memo
        if "last_status" in values:  # a real result (not a dry run, not a shutdown)
            after = row.fail_streak + 1 if f.result.status.value in _failing(f) else 0
            values["fail_streak"] = after
            streaks.append(Streak(f, row.fail_streak, after, row.last_status))
        due = values.get("due_at", row.due_at)
        assert isinstance(due, datetime)
        next_due = due if next_due is None or due < next_due else next_due
        changes.append({"id": row.id, **values})
        events.extend(row_events)
    update_by_id(session, SCHEDULES, changes)
    # Through bulk.insert_rows, not append(): the first result of every target is an event.
    insert_rows(session, EVENTS, event_log.rows(events))
    return Recorded(streaks, next_due)


class _Held(NamedTuple):
    """What recording a run reads of its schedule row."""

    id: int
    running_run_id: str | None
    last_status: str | None
    next_regular: datetime
    due_at: datetime
    fail_streak: int


def _memo(f: Finished) -> dict[str, Any] | None:
    """The memo to save, if any: never from a dry run or a run stopped short, never oversized."""
    memo = f.result.memo
    if memo is None or f.order.dry_run or f.stop_reason is not None:
        return None
    name = f"task {f.order.task.name} on {f.order.target.name}"
    try:
        size = len(json.dumps(memo))
    except (TypeError, ValueError) as exc:  # a kind's bug must not lose the batch it is recorded in
        log.warning("%s: memo is not JSON (%s); the previous one is kept", name, exc)
        return None
    if size > MEMO_LIMIT:
        log.warning("%s: memo of %d bytes is over %d; the previous one is kept", name, size, MEMO_LIMIT)
        return None
    return memo


AUDIT_LIMIT = 1000  # changes listed per event; the rest are counted


def _audit(f: Finished) -> Event:
    """What an action changed, or in a dry run would have changed: ``action.applied`` / ``action.planned``."""
    changes = f.result.changes
    payload: dict[str, object] = {
        "run_id": f.order.run_id,
        "dry_run": f.order.dry_run,
        "changes": [c.as_json() for c in changes[:AUDIT_LIMIT]],
    }
    if len(changes) > AUDIT_LIMIT:
        payload["more"] = len(changes) - AUDIT_LIMIT
    kind = "action.planned" if f.order.dry_run else "action.applied"
    subject = task_subject(f.order.task.name, f.order.target.name)
    return Event(kind, subject, f.finished_at, ACTOR, payload)


def _failing(f: Finished) -> list[str]:
    alert = f.order.task.alert
    return alert.on if alert is not None else ["critical", "unknown"]


def _schedule_update(
    f: Finished, last_status: str | None, next_regular: datetime
) -> tuple[dict[str, object], list[Event]]:
    order, status = f.order, f.result.status.value
    values: dict[str, object] = {"running_run_id": None}
    events: list[Event] = []
    if f.stop_reason in ("timeout", "overrun", "shutdown"):
        events.append(
            Event(
                f"run.{f.stop_reason}",
                task_subject(order.task.name, order.target.name),
                f.finished_at,
                ACTOR,
                {"run_id": order.run_id, "output": f.result.output[:500]},
            )
        )
    if f.stop_reason == "shutdown":
        # Owed: the next process re-runs it once, as recovery.
        values.update(
            retry_at=f.finished_at,
            retry_attempt=order.attempt,
            retry_trigger=Trigger.recovery.value,
            due_at=min(f.finished_at, next_regular),
        )
        return values, events
    if order.dry_run:
        return values, events
    values.update(last_run_id=order.run_id, last_status=status, last_finished_at=f.finished_at)
    if last_status != status:
        events.append(
            Event(
                "task.status",
                task_subject(order.task.name, order.target.name),
                f.finished_at,
                ACTOR,
                {"from": last_status, "to": status, "run_id": order.run_id},
            )
        )
    retry = order.task.retries
    if status in retry.on and order.attempt < retry.attempts and order.trigger is not Trigger.manual:
        retry_at = f.finished_at + retry.delay(order.attempt)
        values.update(
            retry_at=retry_at,
            retry_attempt=order.attempt + 1,
            retry_trigger=Trigger.retry.value,
            due_at=min(retry_at, next_regular),
        )
    return values, events


def recover_interrupted(
    session: Session, now: datetime, owner: str | None = None, spare: Collection[str] = ()
) -> list[str]:
    """Runs left 'running' by a process that died: mark them interrupted and owe a re-run.

    ``owner`` limits recovery to one dead instance; None recovers every running
    run (single-process startup, where nothing else can be running) but those of the
    owners in ``spare`` (Celery workers still alive: they record their runs themselves).
    """
    stmt = select(RunRow.id, RunRow.task, RunRow.target, RunRow.attempt).where(RunRow.state == "running")
    if owner is not None:
        stmt = stmt.where(RunRow.owner == owner)
    if spare:
        stmt = stmt.where(RunRow.owner.not_in(list(spare)))
    # Locked (in one order, as workers take them): a worker taking one meanwhile waits, then skips it.
    stmt = stmt.order_by(RunRow.id).with_for_update()
    stale = session.execute(stmt).all()
    if not stale:
        return []
    update_by_id(
        session,
        RUNS,
        [
            {
                "id": r.id,
                "state": "interrupted",
                "status": Status.unknown.value,
                "stop_reason": "crash",
                "finished_at": now,
                "output": "the process running this was stopped before it finished",
            }
            for r in stale
        ],
    )
    attempts = {r.id: r.attempt for r in stale}
    held = session.execute(
        select(ScheduleRow.id, ScheduleRow.running_run_id).where(ScheduleRow.running_run_id.in_(attempts))
    ).all()
    if held:
        update_by_id(
            session,
            SCHEDULES,
            [
                {
                    "id": h.id,
                    "running_run_id": None,
                    "retry_at": now,
                    "retry_trigger": Trigger.recovery.value,
                    "retry_attempt": attempts[h.running_run_id],
                    "due_at": now,
                }
                for h in held
            ],
        )
    append(
        session,
        [
            Event(
                "run.interrupted",
                task_subject(r.task, r.target),
                now,
                ACTOR,
                {"run_id": r.id, "reason": "crash"},
            )
            for r in stale
        ],
    )
    return list(attempts)


def recent_runs(session: Session, task: str, target: str, limit: int) -> list[RunSample]:
    """The last ``limit`` finished, non-dry runs of a task on a target, newest first."""
    rows = session.execute(
        select(RunRow.started_at, RunRow.status, RunRow.metrics)
        .where(
            RunRow.task == task,
            RunRow.target == target,
            RunRow.state == "finished",
            RunRow.dry_run.is_(False),
        )
        .order_by(RunRow.started_at.desc())
        .limit(limit)
    )
    return [RunSample(r.started_at, Status(r.status), r.metrics or {}) for r in rows]
