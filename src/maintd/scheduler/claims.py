"""Claiming due work: the conditional update that makes a run happen once.

A schedule row is claimed by setting ``running_run_id`` while it is NULL, in
the same transaction that inserts the run. One run of a task on a target at a
time; a crash before commit leaves nothing claimed, after commit leaves a run
that recovery finds.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import NamedTuple

from sqlalchemy import Table, func, insert, select, update
from sqlalchemy.orm import Session

from maintd.plan.loader import LoadedPlan
from maintd.plan.models import Task
from maintd.plan.schedule import Misfire, Timing
from maintd.scheduler.orders import RunOrder, Trigger, new_run_id, new_run_ids
from maintd.scheduler.sync import spec_digest
from maintd.store.bulk import insert_rows, update_by_id
from maintd.store.db import dialect_insert, rowcount
from maintd.store.events import Event, append, task_subject
from maintd.store.models import RunRow, ScheduleRow

ACTOR = "scheduler"
RUNS: Table = RunRow.__table__  # type: ignore[assignment]
SCHEDULES: Table = ScheduleRow.__table__  # type: ignore[assignment]
_NEXT_DUE = select(func.min(SCHEDULES.c.due_at)).where(
    SCHEDULES.c.active, SCHEDULES.c.running_run_id.is_(None)
)


@dataclass
class Claimed:
    orders: list[RunOrder] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    lag_seconds: list[float] = field(default_factory=list)


def next_due_at(session: Session, now: datetime) -> datetime | None:
    """The earliest due time of any idle active row (the loop sleeps until then)."""
    # Every tick reads it (after each alert, under a burst): a statement built once, run on the
    # session's connection; building it and going through the ORM cost more than running it.
    found: datetime | None = session.connection().scalar(_NEXT_DUE)
    return found


def claim_due(
    session: Session, loaded: LoadedPlan, now: datetime, *, owner: str, limit: int = 1000
) -> Claimed:
    """Claim every idle row due at ``now`` (up to ``limit``) and insert its run."""
    stmt = (
        select(*_CLAIM_COLUMNS)
        .where(ScheduleRow.active, ScheduleRow.due_at <= now, ScheduleRow.running_run_id.is_(None))
        .order_by(ScheduleRow.due_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    # As tuples: a Row's attribute lookup first fails as a plain attribute (formatting an
    # AttributeError) before it finds the column, ~2 k instructions for each of the ~10 read a row.
    # Executed by Core: plain columns need none of the ORM's per-row handling.
    rows = list(map(_DueRow._make, session.connection().execute(stmt)))
    claimed = Claimed()
    timings: dict[str, Timing] = {}
    runs: list[dict[str, object]] = []
    changes: list[dict[str, object]] = []
    # Name → task/target once per claim, not a scan of the plan per row (10,000 rows x 10,000
    # targets was seconds). reversed(): the first of a name wins, as with Plan.task/Plan.target.
    tasks = {t.name: t for t in reversed(loaded.plan.tasks)} if rows else {}
    targets = {t.name: t for t in reversed(loaded.plan.targets)} if rows else {}
    run_ids = new_run_ids(len(rows))
    for row, run_id in zip(rows, run_ids, strict=True):
        task, target = tasks.get(row.task), targets.get(row.target)
        if task is None or target is None:
            changes.append({"id": row.id, "active": False})  # plan changed under us; sync catches up
            continue
        timing = timings.get(task.name) or timings.setdefault(task.name, task.schedule.timing())
        decision, values = _decide(row, task, timing, now, claimed.events)
        if decision is None:
            changes.append({"id": row.id, **values})
            continue
        order = RunOrder(run_id, row.id, task, target, loaded.configs[task.name], *decision)
        changes.append({"id": row.id, **values, "running_run_id": order.run_id})
        claimed.orders.append(order)
        claimed.lag_seconds.append(max(0.0, (now - order.scheduled_for).total_seconds()))
        runs.append(run_values(order, now, owner))
    update_by_id(session, SCHEDULES, changes)
    insert_rows(session, RUNS, runs)
    return claimed


class _DueRow(NamedTuple):
    """The columns of a schedule row a claim reads (columns: loading ORM objects cost more)."""

    id: int
    task: str
    target: str
    next_regular: datetime
    window_end: datetime | None
    retry_at: datetime | None
    retry_attempt: int
    retry_trigger: str | None


_CLAIM_COLUMNS = (
    ScheduleRow.id,
    ScheduleRow.task,
    ScheduleRow.target,
    ScheduleRow.next_regular,
    ScheduleRow.window_end,
    ScheduleRow.retry_at,
    ScheduleRow.retry_attempt,
    ScheduleRow.retry_trigger,
)


class _Decision(NamedTuple):
    trigger: Trigger
    attempt: int
    scheduled_for: datetime
    window_end: datetime | None
    in_window: bool


def _decide(
    row: _DueRow, task: Task, timing: Timing, now: datetime, events: list[Event]
) -> tuple[_Decision | None, dict[str, object]]:
    """Run a due row (and how) or skip it; also the row's next times."""
    # A recovery re-run is owed for the past: it goes first even when a regular time is overdue too
    # (claiming that one would clear it); the regular time stays due and is claimed next.
    owed = row.retry_trigger == Trigger.recovery.value
    if row.retry_at is not None and row.retry_at <= now and (owed or row.retry_at <= row.next_regular):
        span = timing.window_at(now)
        trigger = Trigger(row.retry_trigger or Trigger.retry)
        values: dict[str, object] = {
            "retry_at": None,
            "retry_attempt": 0,
            "retry_trigger": None,
            "due_at": row.next_regular,
        }
        if timing.window is not None and span is None and trigger is Trigger.retry:
            events.append(_event("run.skipped", row, now, reason="window closed before the retry"))
            return None, values
        decision = _Decision(
            trigger, row.retry_attempt or 1, row.retry_at, span.end if span else None, timing.in_window(now)
        )
        return decision, values

    due = row.next_regular
    if row.window_end is not None:
        on_time = now < row.window_end
    else:
        on_time = now - due <= task.schedule.misfire_grace
    following = timing.next_due(due)
    if following.at <= now:
        following = timing.next_due(now)
    values = {
        "next_regular": following.at,
        "window_end": following.window_end,
        "due_at": following.at,
        "retry_at": None,
        "retry_attempt": 0,
        "retry_trigger": None,
    }
    if on_time:
        return _Decision(Trigger.schedule, 1, due, row.window_end, True), values
    if task.schedule.misfire is Misfire.run_once:
        events.append(_event("run.misfire", row, now, due=due.isoformat(), policy="run_once"))
        span = timing.window_at(now)
        return _Decision(Trigger.misfire, 1, due, span.end if span else None, timing.in_window(now)), values
    events.append(_event("run.missed", row, now, due=due.isoformat(), policy="skip"))
    return None, values


def _event(kind: str, row: _DueRow, now: datetime, **payload: object) -> Event:
    return Event(kind, task_subject(row.task, row.target), now, ACTOR, dict(payload))


# One object for every claimed run's empty metrics: bulk converts a value shared by all rows once.
# Only ever written to the database, never handed out (a caller mutating it would change them all).
_NO_METRICS: dict[str, object] = {}


def run_values(order: RunOrder, now: datetime, owner: str) -> dict[str, object]:
    return {
        "id": order.run_id,
        "task": order.task.name,
        "target": order.target.name,
        "kind": order.task.kind,
        "trigger": order.trigger.value,
        "attempt": order.attempt,
        "scheduled_for": order.scheduled_for,
        "window_end": order.window_end,
        "started_at": now,
        "state": "running",
        "in_window": order.in_window,
        "dry_run": order.dry_run,
        "preventive": order.task.preventive,
        "output": "",
        "metrics": _NO_METRICS,
        "owner": owner,
    }


def ensure_row(session: Session, task: Task, target: str, now: datetime) -> int:
    """The schedule row of a task and target, created inactive if the scheduler has not made it yet."""
    find = select(ScheduleRow.id).where(ScheduleRow.task == task.name, ScheduleRow.target == target)
    found = session.scalar(find)
    if found is not None:
        return found
    due = task.schedule.timing().first_due(now)
    # Two manual runs may race to create the row: the loser's insert does nothing.
    values = {
        "task": task.name,
        "target": target,
        "active": False,
        "spec": spec_digest(task),
        "due_at": due.at,
        "next_regular": due.at,
        "window_end": due.window_end,
        "retry_attempt": 0,
    }
    session.execute(dialect_insert(session)(ScheduleRow).values(**values).on_conflict_do_nothing())
    return int(session.scalars(find).one())


def claim_manual(
    session: Session,
    loaded: LoadedPlan,
    task: Task,
    target_name: str,
    now: datetime,
    *,
    owner: str,
    dry_run: bool,
    actor: str,
) -> RunOrder | None:
    """Claim one run now, outside the schedule; None if that task is already running there."""
    row_id = ensure_row(session, task, target_name, now)
    run_id = new_run_id()
    claimed = session.execute(
        update(ScheduleRow)
        .where(ScheduleRow.id == row_id, ScheduleRow.running_run_id.is_(None))
        .values(running_run_id=run_id)
    )
    if rowcount(claimed) != 1:
        return None
    timing = task.schedule.timing()
    span = timing.window_at(now)
    order = RunOrder(
        run_id,
        row_id,
        task,
        loaded.plan.target(target_name),
        loaded.configs[task.name],
        Trigger.manual,
        1,
        now,
        span.end if span else None,
        timing.in_window(now),
        dry_run,
    )
    session.execute(insert(RunRow), [run_values(order, now, owner)])
    append(
        session,
        Event(
            "run.requested",
            task_subject(task.name, target_name),
            now,
            actor,
            {"run_id": run_id, "dry_run": dry_run},
        ),
    )
    return order
