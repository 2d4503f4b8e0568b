"""The reaper: runs sent to Celery whose message was lost are marked interrupted, once.

A message can be lost after its run was claimed: a broker restarted without persistence, a
queue purged, a worker that acknowledged and died before recording. Such a run would stay
``running`` and its schedule row claimed for ever. The lease holder looks every
``reaper_interval`` (``Reaper.run``) for runs sent to the executor that are still running
after their task's timeout + ``reaper_grace`` (a worker kills a run at its timeout, so a
live one records it before) and whose owner is neither this process's own runner nor a
worker still beating (``WorkerBeat``: a worker that took a run is alive while it beats and
records the run itself). A run no worker took yet while messages wait in the broker's queue
may be one of them (a backlog, not a loss): it gets ``PATIENCE`` more. For each lost run, in
transactions of ``BATCH`` fenced by the lease:

- the run becomes ``interrupted``, status unknown, stop reason ``lost``: a conditional
  update on (``state = running``, the owner seen), so a worker taking or recording it
  meanwhile wins and the run is left alone;
- the schedule row is freed; when the task's retry policy retries ``unknown`` and attempts
  are left, the retry is armed (as for a failed run); otherwise the next scheduled run
  proceeds;
- ``run.interrupted`` (reason ``lost``) is appended.

A worker whose result arrives for a reaped run records nothing (it no longer owns the run,
maintd.executor.worker) but a ``run.late`` event: the run is counted once, as lost.

A sweep that reaps runs raises ``MaintdRunsLost`` through the alert pipeline, and resolves it
once no run was lost for a while (maintd.executor.alerting.RunsLost).
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Table, delete, select, update
from sqlalchemy.orm import Session

from maintd.checks.base import Status
from maintd.clock import Clock
from maintd.executor.alerting import RunsLost, some
from maintd.lease import Gate, LeaseLost
from maintd.metrics import Metrics
from maintd.plan.loader import LoadedPlan
from maintd.plan.models import Task
from maintd.scheduler.orders import Trigger
from maintd.settings import DEFAULT_QUEUE
from maintd.store.bulk import update_by_id
from maintd.store.db import Store, dialect_insert
from maintd.store.events import Event, append, task_subject
from maintd.store.models import HeartbeatRow, RunRow, ScheduleRow

log = logging.getLogger(__name__)
ACTOR = "reaper"
SCHEDULES: Table = ScheduleRow.__table__  # type: ignore[assignment]
BEAT_EVERY = timedelta(seconds=5)  # a worker's heartbeat
BEAT_STALE = timedelta(seconds=30)  # ... missed this long: the worker is dead (6 beats)
BEAT_FORGET = timedelta(days=1)  # a dead worker's heartbeat row is dropped once it owns no run
WORKER = "worker:"  # the heartbeat component of a worker: worker:<instance>
DEFAULT_TIMEOUT = Task.model_fields["timeout"].default  # a task no longer in the plan
PATIENCE = timedelta(hours=1)  # more for a run never taken while messages wait (a backlog)
BATCH = 1000  # runs reaped a transaction (10,000 one by one held the lease's fence for a minute)


@dataclass(frozen=True)
class Running:
    """A run still ``running`` in the store, as the reaper sees it."""

    run_id: str
    task: str
    target: str
    owner: str
    attempt: int
    trigger: str
    started_at: datetime


@dataclass(frozen=True)
class Seen:
    """What a sweep knows besides the run: who still has runs, and whether messages wait."""

    local: set[str]  # the runs this process's own runner has
    live: set[str]  # the workers beating now
    sender: str  # this scheduler: a run it owns was sent and never taken by a worker
    queued: bool  # messages wait in the queue (a run never taken may be among them)


def is_lost(run: Running, *, now: datetime, timeout: timedelta, grace: timedelta, seen: Seen) -> bool:
    """The decision: nobody will record ``run`` any more.

    A run never taken while messages wait in the queue may be one of them (a backlog): it is
    given PATIENCE more before it counts as lost.
    """
    if run.run_id in seen.local or run.owner in seen.live:
        return False
    deadline = run.started_at + timeout + grace
    if run.owner == seen.sender and seen.queued:
        deadline += PATIENCE
    return now >= deadline


class Reaper:
    """The lease holder's sweep for lost runs (``sweep``) and its loop (``run``)."""

    def __init__(
        self,
        *,
        store: Store,
        clock: Clock,
        owner: str,
        loaded: Callable[[], LoadedPlan | None],
        interval: timedelta,
        grace: timedelta,
        metrics: Metrics | None = None,
        queued: Callable[[], int | None] | None = None,
        queue: str = DEFAULT_QUEUE,
        on_alert: Callable[[], None] = lambda: None,
    ) -> None:
        self.store = store
        self.clock = clock
        self.owner = owner  # the scheduler instance: runs it claimed and sent carry its name
        self.loaded = loaded
        self.interval = interval
        self.grace = grace
        self.reaped = 0
        self.metrics = metrics
        # Messages waiting in the broker's queue; None: the broker does not answer (it may have lost them).
        self.queued = queued
        self.alert = RunsLost(store=store, queue=queue, on_alert=on_alert)

    def sweep(self, now: datetime, local: set[str]) -> list[str]:
        """Reap the lost runs at ``now``, BATCH a transaction; their ids. Call through ``Gate.call``."""
        loaded = self.loaded()
        tasks = {t.name: t for t in loaded.plan.tasks} if loaded is not None else {}
        lost: list[Running] = []
        waiting = bool(self.queued()) if self.queued is not None else False  # before any transaction
        while True:
            batch = self._sweep_once(now, local, tasks, waiting)
            lost.extend(batch)
            if len(batch) < BATCH:
                break
        reaped = [r.run_id for r in lost]
        if reaped:
            self.reaped += len(reaped)
            if self.metrics is not None:
                self.metrics.runs_lost.inc(len(reaped))
            log.error("%d run(s) sent to workers were lost (no result): %s", len(reaped), some(reaped))
        if loaded is not None:  # no plan: no incident settings to ingest with (nothing was sent either)
            self.alert.after_sweep(loaded, now, [(r.run_id, r.task) for r in lost])
        return reaped

    def _sweep_once(
        self, now: datetime, local: set[str], tasks: dict[str, Task], waiting: bool
    ) -> list[Running]:
        with self.store.write() as session:
            beats = worker_beats(session)
            live = {w for w, at in beats.items() if now - at < BEAT_STALE}
            seen = Seen(local=local, live=live, sender=self.owner, queued=waiting)
            # Sent by this scheduler and never taken, or taken by a worker: runs of API replicas
            # and standbys are their own runners' (a dead holder's are recovered at takeover).
            owners = [self.owner, *beats]
            running = [
                Running(*row)
                for row in session.execute(
                    select(
                        RunRow.id,
                        RunRow.task,
                        RunRow.target,
                        RunRow.owner,
                        RunRow.attempt,
                        RunRow.trigger,
                        RunRow.started_at,
                    ).where(
                        RunRow.state == "running",
                        RunRow.owner.in_(owners),
                        RunRow.started_at <= now - self.grace,
                    )
                )
            ]
            lost = [
                r
                for r in running
                if is_lost(r, now=now, timeout=_timeout(tasks.get(r.task)), grace=self.grace, seen=seen)
            ]
            reaped = set(_reap(session, lost[:BATCH], tasks, now))
            _forget_dead_workers(session, beats, now, busy={r.owner for r in running})
        return [r for r in lost[:BATCH] if r.run_id in reaped]

    async def run(self, gate: Gate, local: Callable[[], set[str]], stopping: asyncio.Event) -> None:
        """Sweep every ``interval`` while this process holds the lease, until ``stopping``."""
        due = self.clock.now() + self.interval
        while not stopping.is_set():
            await self.clock.sleep_until(due, stopping)
            if stopping.is_set() or not gate.held():
                return
            # The next sweep is due `interval` after this one starts, not after it ends: a slow sweep
            # (one that raises an alert) does not push it back, nor miss a clock moved meanwhile.
            now = self.clock.now()
            due = now + self.interval
            try:
                await asyncio.to_thread(gate.call, self.sweep, now, local())
            except LeaseLost:
                return
            except Exception:
                log.exception("looking for lost runs failed; trying again in %s", self.interval)


def worker_beats(session: Session) -> dict[str, datetime]:
    """Every worker's last heartbeat, by its instance name."""
    rows = session.execute(
        select(HeartbeatRow.component, HeartbeatRow.beat_at).where(HeartbeatRow.component.startswith(WORKER))
    )
    return {row.component[len(WORKER) :]: row.beat_at for row in rows}


def live_workers(session: Session, now: datetime) -> set[str]:
    """The workers beating at ``now``: their runs are theirs to record (the reaper and a
    scheduler taking over leave them alone)."""
    return {w for w, at in worker_beats(session).items() if now - at < BEAT_STALE}


def _timeout(task: Task | None) -> timedelta:
    return task.timeout if task is not None else DEFAULT_TIMEOUT


def _reap(session: Session, lost: list[Running], tasks: dict[str, Task], now: datetime) -> list[str]:
    """Mark ``lost`` runs interrupted and free their schedule rows, each only if nobody took or
    recorded it meanwhile (still running, the owner read); the ids reaped."""
    by_owner: dict[str, list[str]] = {}
    for r in lost:
        by_owner.setdefault(r.owner, []).append(r.run_id)
    marked: set[str] = set()
    for owner, ids in by_owner.items():
        marked.update(
            session.scalars(
                update(RunRow)
                .where(RunRow.id.in_(ids), RunRow.state == "running", RunRow.owner == owner)
                .values(
                    state="interrupted",
                    status=Status.unknown.value,
                    stop_reason="lost",
                    finished_at=now,
                    output="no worker recorded this run: its Celery message was lost",
                )
                .returning(RunRow.id)
            )
        )
    reaped = [r for r in lost if r.run_id in marked]
    if not reaped:
        return []
    rows = session.execute(
        select(ScheduleRow.id, ScheduleRow.running_run_id, ScheduleRow.next_regular).where(
            ScheduleRow.running_run_id.in_(list(marked))
        )
    )
    # Only these runs' recorders would change these rows, and they wait for the run rows updated here.
    held = {row.running_run_id: row for row in rows}
    changes: list[dict[str, object]] = []
    events: list[Event] = []
    for run in reaped:
        payload: dict[str, object] = {"run_id": run.run_id, "reason": "lost", "owner": run.owner}
        row = held.get(run.run_id)
        if row is not None:
            values: dict[str, object] = {"id": row.id, "running_run_id": None}
            retry_at = _retry_at(run, tasks.get(run.task), now)
            if retry_at is not None:
                values.update(
                    retry_at=retry_at,
                    retry_attempt=run.attempt + 1,
                    retry_trigger=Trigger.retry.value,
                    due_at=min(retry_at, row.next_regular),
                )
                payload["retry_at"] = retry_at.isoformat()
            changes.append(values)
        events.append(Event("run.interrupted", task_subject(run.task, run.target), now, ACTOR, payload))
    update_by_id(session, SCHEDULES, changes)
    append(session, events)
    return [r.run_id for r in reaped]


def _retry_at(run: Running, task: Task | None, now: datetime) -> datetime | None:
    """When the task's retry policy runs a lost run again (as a failed one: status unknown), or None."""
    retry = task.retries if task is not None else None
    if (
        retry is None
        or Status.unknown.value not in retry.on
        or run.attempt >= retry.attempts
        or run.trigger == Trigger.manual.value
    ):
        return None
    return now + retry.delay(run.attempt)


def _forget_dead_workers(
    session: Session, beats: dict[str, datetime], now: datetime, *, busy: set[str]
) -> None:
    """Drop the heartbeat rows of workers dead for a day that own no running run."""
    gone = [w for w, at in beats.items() if now - at > BEAT_FORGET and w not in busy]
    if gone:
        session.execute(delete(HeartbeatRow).where(HeartbeatRow.component.in_([WORKER + w for w in gone])))


def late_result(session: Session, run_id: str, status: str, now: datetime, owner: str) -> None:
    """A worker's result for a run it no longer owns: a ``run.late`` event if the run was reaped."""
    row = session.execute(
        select(RunRow.task, RunRow.target, RunRow.stop_reason).where(
            RunRow.id == run_id, RunRow.state == "interrupted"
        )
    ).first()
    if row is not None and row.stop_reason == "lost":
        payload = {"run_id": run_id, "status": status, "worker": owner, "recorded": False}
        append(session, [Event("run.late", task_subject(row.task, row.target), now, "runner", payload)])


class WorkerBeat:
    """A worker's heartbeat row, written every ``BEAT_EVERY`` by a thread: the reaper leaves its runs."""

    def __init__(self, store: Store, clock: Clock, owner: str) -> None:
        self.store = store
        self.clock = clock
        self.owner = owner
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._keep, name="maintd-worker-beat", daemon=True)

    def beat(self) -> None:
        now = self.clock.now()
        with self.store.write() as session:
            stmt = dialect_insert(session)(HeartbeatRow).values(
                component=WORKER + self.owner, instance=self.owner, beat_at=now
            )
            session.execute(stmt.on_conflict_do_update(index_elements=["component"], set_={"beat_at": now}))

    def start(self) -> None:
        self.beat()  # before the first message: the reaper knows this worker from the start
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)

    def _keep(self) -> None:
        while not self._stop.wait(BEAT_EVERY.total_seconds()):
            try:
                self.beat()
            except Exception as exc:  # the database is away: the next beat tries again
                log.warning("worker heartbeat failed: %s", str(exc).splitlines()[0] if str(exc) else exc)
