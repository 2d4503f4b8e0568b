"""Executes claimed runs: concurrency limits, deadlines, cancellation, batched recording."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import functools
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from prometheus_client import Counter, Histogram
from sqlalchemy import select
from sqlalchemy.orm import Session

from maintd.checks.base import CheckResult, Resources, RunContext, RunSample, Status
from maintd.clock import Clock
from maintd.metrics import Metrics
from maintd.registry import Registry
from maintd.runner.children import Children
from maintd.runner.recorder import Finished, Streak, recent_runs, record
from maintd.scheduler.orders import RunOrder
from maintd.store.db import Store
from maintd.store.models import ScheduleRow

log = logging.getLogger(__name__)

BATCH = 500
# While runs are in flight the recorder lets results gather this long before writing: each write
# is a transaction with a fixed cost (measured: batches of ~20-70 at 1,500 checks/s cost ~0.1 ms
# of CPU per run; gathered for 50 ms, about a third of that). Shutdown and flush() are not delayed
# more than this.
GATHER = 0.05
OUTPUT_LIMIT = 16_384


class Runner:
    """Runs orders as asyncio tasks, at most ``concurrency`` at once (the rest wait in a queue);
    a single recorder task writes results in batches.

    A batch is whatever finished while the previous one was written, plus what
    finishes within ``GATHER`` seconds when more runs are still in flight.
    ``on_recorded`` is called after each batch with the earliest due time of
    the schedule rows it freed (None if it freed none).
    """

    def __init__(
        self,
        *,
        store: Store,
        registry: Registry,
        clock: Clock,
        owner: str,
        concurrency: int = 64,
        output_limit: int = OUTPUT_LIMIT,
        metrics: Metrics | None = None,
        on_recorded: Callable[[datetime | None], None] | None = None,
        children: Children | None = None,
        on_streaks: Callable[[Session, list[Streak]], None] | None = None,
    ) -> None:
        self.store = store
        self.registry = registry
        self.clock = clock
        self.owner = owner
        self.output_limit = output_limit
        self.metrics = metrics
        if metrics is not None:
            # Read at scrape time, not kept up to date per run: an inc() and a dec() per run each
            # took the gauge's lock on the event loop. (len() of each is safe from the scrape thread.)
            metrics.runs_in_flight.set_function(lambda: self.in_flight)
        self.on_recorded = on_recorded
        self.children = children
        self.on_streaks = on_streaks
        self.resources = Resources()
        self._concurrency = concurrency
        # Runs wait for a slot as queue entries, not as tasks parked on a semaphore: with 10,000
        # due at once that was 10,000 tasks for the garbage collector to walk (measured: 0.05 ms of
        # CPU a run and 13 MB of RSS less this way).
        self._queued: collections.deque[_Queued] = collections.deque()
        self._running: dict[asyncio.Task[None], asyncio.Future[None]] = {}
        self._recorder: asyncio.Task[None] | None = None
        # prometheus_client's labels() validates and locks on every call: one child per label set.
        self._counters: dict[tuple[str, str, str], Counter] = {}
        self._durations: dict[str, Histogram] = {}
        # Made in start(): asyncio primitives belong to the loop that runs them.
        self._task_slots: dict[str, asyncio.Semaphore]
        self._results: asyncio.Queue[Finished]

    @property
    def in_flight(self) -> int:
        return len(self._running) + len(self._queued)

    def run_ids(self) -> set[str]:
        """The runs waiting or running here (call from the event loop): the reaper leaves them alone."""
        return {q.order.run_id for q in self._queued} | {
            t.get_name().removeprefix("run-") for t in self._running
        }

    def start(self) -> None:
        if self._recorder is None:
            self._task_slots = {}
            self._results = asyncio.Queue()
            self._recorder = asyncio.create_task(self._record_forever(), name="maintd-recorder")

    def set_concurrency(self, concurrency: int) -> None:
        """A new global limit (after a plan reload; any thread): runs already started keep their slot,
        queued ones start under the new limit as slots free up."""
        self._concurrency = concurrency

    def submit(self, order: RunOrder) -> asyncio.Future[None]:
        """Queue a run; it starts when a slot is free. The future is done when the run has finished
        and its result is queued for recording (cancelled if shutdown interrupted it)."""
        self.start()
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queued.append(_Queued(order, done, time.perf_counter()))
        self._start_queued()
        return done

    def _start_queued(self) -> None:
        while self._queued and len(self._running) < self._concurrency:
            queued = self._queued.popleft()
            order = queued.order
            task = asyncio.create_task(self._execute(order, queued.since), name=f"run-{order.run_id}")
            self._running[task] = queued.done
            task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        done = self._running.pop(task)
        if task.cancelled():
            done.cancel()
        elif (error := task.exception()) is not None:
            done.set_exception(error)
        else:
            done.set_result(None)
        self._start_queued()

    async def run_all(self, orders: Iterable[RunOrder]) -> None:
        """Run orders to completion and wait until their results are stored."""
        tasks = [self.submit(o) for o in orders]
        await asyncio.gather(*tasks, return_exceptions=True)
        await self.flush()

    async def flush(self) -> None:
        if self._recorder is not None:
            await self._results.join()

    async def stop(self, grace: float) -> None:
        """Let runs finish for ``grace`` seconds, interrupt the rest, store everything.

        Queued runs may still start during the grace period; those left then are interrupted unstarted.
        """
        waiting = [q.done for q in self._queued] + list(self._running.values())
        if waiting:
            await asyncio.wait(waiting, timeout=grace)
        while self._queued:
            queued = self._queued.popleft()
            self._finish(queued.order, _interrupted(), "interrupted", "shutdown", queued.since)
            queued.done.cancel()
        pending = list(self._running)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        await self.flush()
        if self._recorder is not None:
            self._recorder.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._recorder
            self._recorder = None
        await self.resources.aclose()

    async def _execute(self, order: RunOrder, queued: float) -> None:
        try:
            async with self._task_slot(order):
                started_mono = time.perf_counter()
                result, stop_reason = await self._run_check(order)
        except asyncio.CancelledError:
            self._finish(order, _interrupted(), "interrupted", "shutdown", queued)
            raise
        self._finish(order, result, "finished", stop_reason, started_mono)

    async def _run_check(self, order: RunOrder) -> tuple[CheckResult, str | None]:
        now = self.clock.now()
        deadline, reason = now + order.task.timeout, "timeout"
        if order.window_end is not None and order.window_end < deadline:
            deadline, reason = order.window_end, "overrun"
        kind = self.registry.get(order.task.kind)
        ctx = RunContext(
            order.task, order.target, order.config, self.clock, deadline, self.resources, order.dry_run
        )
        if self.children is not None:
            ctx.processes = self.children.tracker(order.run_id)
        ctx.history = functools.partial(self._history, order)
        ctx.memo = functools.partial(self._memo, order.schedule_id)
        try:
            async with asyncio.timeout(max(0.0, (deadline - now).total_seconds())):
                result = await kind.build(order.config).run(ctx)
        except TimeoutError:
            if reason == "overrun":
                return CheckResult(
                    Status.unknown, f"stopped at the end of its window ({_iso(deadline)})"
                ), reason
            return CheckResult(Status.unknown, f"timed out after {order.task.timeout}"), reason
        except Exception as exc:  # a bug in a plugin must not take the runner down
            log.exception("task %s on %s raised", order.task.name, order.target.name)
            return CheckResult(Status.unknown, f"internal error in kind {kind.name}: {exc!r}"), "error"
        if len(result.output) > self.output_limit:
            result.output = (
                result.output[: self.output_limit] + f"\n[output truncated at {self.output_limit} bytes]"
            )
        return result, None

    async def _history(self, order: RunOrder, limit: int) -> list[RunSample]:
        return await asyncio.to_thread(self._history_sync, order.task.name, order.target.name, limit)

    def _history_sync(self, task: str, target: str, limit: int) -> list[RunSample]:
        with self.store.read() as session:
            return recent_runs(session, task, target, limit)

    async def _memo(self, schedule_id: int) -> dict[str, Any]:
        return await asyncio.to_thread(self._memo_sync, schedule_id)

    def _memo_sync(self, schedule_id: int) -> dict[str, Any]:
        with self.store.read() as session:
            return session.scalar(select(ScheduleRow.memo).where(ScheduleRow.id == schedule_id)) or {}

    def _finish(
        self, order: RunOrder, result: CheckResult, state: str, reason: str | None, since: float
    ) -> None:
        elapsed = time.perf_counter() - since
        self._results.put_nowait(Finished(order, result, state, reason, self.clock.now(), elapsed * 1000))
        if self.metrics:
            kind, key = order.task.kind, (order.task.kind, result.status.value, state)
            counter = self._counters.get(key) or self._counters.setdefault(
                key, self.metrics.runs.labels(*key)
            )
            counter.inc()
            duration = self._durations.get(kind) or self._durations.setdefault(
                kind, self.metrics.run_duration.labels(kind)
            )
            duration.observe(elapsed)

    def _task_slot(self, order: RunOrder) -> asyncio.Semaphore | contextlib.nullcontext[None]:
        limit = order.task.concurrency
        if not limit:
            return contextlib.nullcontext()
        key = f"{order.task.name}:{limit}"
        return self._task_slots.setdefault(key, asyncio.Semaphore(limit))

    async def _record_forever(self) -> None:
        while True:
            batch = [await self._results.get()]
            if self._running and self._results.qsize() < BATCH:
                await asyncio.sleep(GATHER)
            while len(batch) < BATCH and not self._results.empty():
                batch.append(self._results.get_nowait())
            due = await self._write(batch)
            for _ in batch:
                self._results.task_done()
            if self.on_recorded:
                self.on_recorded(due)

    async def _write(self, batch: list[Finished]) -> datetime | None:
        delay = 0.5
        while True:
            try:
                return await asyncio.to_thread(self._write_sync, batch)
            except Exception:  # the database is down or busy: keep the results, try again
                log.exception("recording %d runs failed; retrying in %.1fs", len(batch), delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30.0)

    def _write_sync(self, batch: list[Finished]) -> datetime | None:
        with self.store.write() as session:
            recorded = record(session, batch)
            if self.on_streaks is not None:
                # Same transaction: an alert raised from runs is as durable as the runs themselves.
                self.on_streaks(session, recorded.streaks)
        return recorded.next_due


@dataclass(frozen=True, slots=True)
class _Queued:
    order: RunOrder
    done: asyncio.Future[None]
    since: float  # perf_counter() when submitted


def _interrupted() -> CheckResult:
    return CheckResult(Status.unknown, "interrupted: maintd was shutting down")


def _iso(when: datetime) -> str:
    return when.isoformat(timespec="seconds")
