"""Delivering the notification log: claim due rows, send them, record every attempt.

A row is claimed by moving its ``lease_until`` forward with a conditional UPDATE
(``WHERE id = :id AND status = 'pending' AND (lease_until IS NULL OR lease_until < :now)``):
of several processes sharing the database, exactly one gets it. The lease value is
also the claim's token: the result is written only ``WHERE lease_until = <ours>``, so an
acknowledgement that cancelled the row meanwhile, or another process that took over
an expired lease, wins.

Delivery is at least once, not exactly once, for the one send in flight when a
process dies: the receiver may have the page while the database never heard, and the
row is sent again when its lease expires. Nothing else is ever sent twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from types import SimpleNamespace

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from maintd.clock import Clock, utc
from maintd.metrics import Metrics
from maintd.notify import outbox
from maintd.notify.bulkhead import DEFER, Bulkhead
from maintd.notify.health import ReceiverHealth
from maintd.notify.jobs import (
    ATTEMPT,
    CANDIDATES,
    IS_PENDING,
    LEASE_ROWS,
    UNREADABLE,
    Job,
    Outcome,
    finish,
    job_of,
)
from maintd.notify.policy import BACKOFF, MAX_ATTEMPTS, MAX_ATTEMPTS_LAST, RetryPolicy
from maintd.notify.transport import Notifier, TransportError, redact
from maintd.settings import DEFAULT_NOTIFY_CONCURRENCY
from maintd.store.db import Store, rowcount
from maintd.store.events import Event, append
from maintd.store.models import NotificationRow

__all__ = ["Dispatcher", "Job", "Leased", "Outcome"]

log = logging.getLogger(__name__)

_ROW = NotificationRow
# Built once: building it and its cache key cost more than running it (a tick after each alert).
_NEXT_READY = select(
    func.min(case((_ROW.lease_until > _ROW.due_at, _ROW.lease_until), else_=_ROW.due_at))
).where(IS_PENDING)
LEASE = timedelta(minutes=2)  # longer than any send (AppriseNotifier bounds one to ~20 s)
IDLE_WAKE = timedelta(seconds=30)


@dataclass
class Leased:
    """What ``Dispatcher.leasing_in_place`` leased: the jobs to hand over after the commit, and
    whether due pages were left for the loop (then ``wake()`` it)."""

    jobs: list[Job] = field(default_factory=list)
    more: bool = True


class Dispatcher:
    """Delivers due notifications; ``concurrency`` sends at once, each in its own thread.

    Run it inside an event loop (``start()``, ``wake()``, ``await stop()``), or call
    ``deliver_due(now)`` for one synchronous pass.
    """

    def __init__(
        self,
        store: Store,
        clock: Clock,
        notifier: Notifier,
        *,
        owner: str,
        concurrency: int = DEFAULT_NOTIFY_CONCURRENCY,
        metrics: Metrics | None = None,
        lease: timedelta = LEASE,
        backoff: tuple[timedelta, ...] = BACKOFF,
        max_attempts: int = MAX_ATTEMPTS,
        max_attempts_last: int = MAX_ATTEMPTS_LAST,
        per_endpoint: int | None = None,
    ) -> None:
        self.store = store
        self.clock = clock
        self.notifier = notifier
        self.owner = owner
        self.concurrency = concurrency
        self.metrics = metrics
        self.lease = lease
        self.policy = RetryPolicy(backoff, max_attempts, max_attempts_last)
        # Half the slots by default: a receiver that hangs leaves the other half to the rest.
        self.bulkhead = Bulkhead(per_endpoint or max(1, concurrency // 2))
        self.health = ReceiverHealth(clock)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None
        self._pool: ThreadPoolExecutor | None = None
        self._inflight: set[asyncio.Task[None]] = set()

    @property
    def in_flight(self) -> int:
        """Sends the loop has started and not yet recorded."""
        return len(self._inflight)

    # -- one synchronous pass ------------------------------------------------------------------

    def deliver_due(self, now: datetime | None = None) -> int:
        """Send everything due at ``now`` (default: the clock's now); the number of attempts made.

        A permanent failure moves to the next channel at once, so that one is tried in the
        same pass; retries wait for their backoff.
        """
        now = now or self.clock.now()
        attempts = 0
        with ThreadPoolExecutor(self.concurrency, thread_name_prefix="maintd-notify") as pool:
            while True:
                with self.store.write() as session:
                    jobs = self.claim(session, now, self.concurrency)
                if not jobs:
                    return attempts
                # Each worker records its own result: commits overlap instead of queueing behind sends.
                list(pool.map(lambda job: self.record(job, self.attempt(job), now), jobs))
                attempts += len(jobs)

    def prepare(self, urls: Iterable[str]) -> None:
        """Let the notifier get ready for these URLs in a thread of its own, if it can (see
        ``AppriseNotifier.prepare``): the plan's channels, before their first page."""
        prepare = getattr(self.notifier, "prepare", None)
        if prepare is not None:
            threading.Thread(
                target=prepare, args=(list(urls),), name="maintd-notify-prepare", daemon=True
            ).start()

    # -- the loop ------------------------------------------------------------------------------

    def start(self) -> asyncio.Task[None]:
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self._pool = ThreadPoolExecutor(self.concurrency, thread_name_prefix="maintd-notify")
        self._task = asyncio.create_task(self._run(), name="maintd-notify")
        return self._task

    def wake(self) -> None:
        """Look at the log now (a notification was queued); safe from any thread."""
        loop = self._loop
        if loop is None:
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            self._wake.set()
        else:
            loop.call_soon_threadsafe(self._wake.set)

    async def stop(self, grace: float = 10.0) -> None:
        """Stop claiming; give sends in flight ``grace`` seconds (unfinished ones are retried
        by whoever claims them after their lease)."""
        if self._loop is None:
            return  # never started
        self._stopping.set()
        self._wake.set()
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._inflight:
            await asyncio.wait(set(self._inflight), timeout=grace)
        for task in list(self._inflight):
            task.cancel()
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)

    async def _run(self) -> None:
        while not self._stopping.is_set():
            self._wake.clear()
            free = self.concurrency - len(self._inflight)
            if free <= 0:
                await self._wake.wait()  # a send finishing sets it
                continue
            now = self.clock.now()
            try:
                jobs, earliest = await asyncio.to_thread(self._claim_and_peek, now, free)
            except Exception:
                log.exception("claiming notifications failed; retrying")
                jobs, earliest = [], None
            self._launch(jobs)
            if len(jobs) == free:
                continue  # a full batch may mean more is due
            wake_at = now + IDLE_WAKE if earliest is None else min(earliest, now + IDLE_WAKE)
            await self.clock.sleep_until(wake_at, self._wake)

    def claim_queued(self, session: Session, now: datetime) -> tuple[list[Job], bool]:
        """In the caller's transaction, which has just queued pages: lease what this process's loop
        can send at once; whether due rows may be left for the loop (then ``wake()`` it).

        Hand the jobs to ``hand_over`` only after that transaction commits. This saves the page
        a transaction of its own and a trip through the loop before it is sent.
        """
        loop = self._loop
        if loop is None or loop.is_closed() or self._stopping.is_set():
            return [], True
        free = self.concurrency - len(self._inflight)
        if free <= 0:
            return [], True
        jobs = self.claim(session, now, free)
        return jobs, len(jobs) == free

    @contextlib.contextmanager
    def leasing_in_place(self, session: Session, now: datetime) -> Iterator[Leased]:
        """Around a block of the caller's transaction that queues pages due now (an escalation step
        fired in an alert's transaction): as many as this process's loop can send at once are
        inserted already leased, sparing ``claim_queued``'s SELECT and UPDATE. Hand the jobs to
        ``hand_over`` only after that transaction commits. Older due rows are left to the loop,
        which wakes for them by itself (their due time or their lease's end).
        """
        leased = Leased()
        loop = self._loop
        free = self.concurrency - len(self._inflight)
        if loop is None or loop.is_closed() or self._stopping.is_set() or free <= 0:
            yield leased
            return
        with outbox.leasing_in_place(session, now=now, lease_until=now + self.lease, room=free) as lease:
            yield leased
        for values in lease.rows:
            try:
                leased.jobs.append(job_of(SimpleNamespace(sent_at=None, **values), lease.lease_until))
            except ValueError as exc:  # as ``claim``: a row no code can read is not sent
                error = {"id_": values["id"], "error": f"unreadable: {exc}"}
                session.connection().execute(UNREADABLE, error)
        leased.more = lease.left
        leased.jobs.sort(key=lambda j: j.id)

    def hand_over(self, jobs: list[Job]) -> None:
        """Send jobs ``claim_queued`` leased, once their transaction committed; safe from any thread.

        The sends start at once, from the calling thread; the loop only records their results.
        Should the loop be gone, the rows are sent again after their lease, like a send cut short.
        """
        loop, pool = self._loop, self._pool
        if not jobs or loop is None or pool is None or loop.is_closed():
            return
        try:
            sends = [(job, pool.submit(self.attempt, job)) for job in jobs]
            loop.call_soon_threadsafe(self._launch, jobs, [f for _, f in sends])
        except RuntimeError:  # stopping: the pool or the loop is shut
            log.warning("stopping: %d notification(s) are sent again after their lease", len(jobs))

    def _launch(self, jobs: list[Job], sends: list[Future[Outcome]] | None = None) -> None:
        for i, job in enumerate(jobs):
            sent = None if sends is None else asyncio.wrap_future(sends[i])
            task = asyncio.create_task(self._deliver(job, sent), name=f"maintd-notify-{job.id}")
            self._inflight.add(task)
            task.add_done_callback(self._finished)

    def _claim_and_peek(self, now: datetime, limit: int) -> tuple[list[Job], datetime | None]:
        with self.store.write() as session:
            jobs = self.claim(session, now, limit)
            return jobs, self.next_due_at(session)

    async def _deliver(self, job: Job, sent: asyncio.Future[Outcome] | None = None) -> None:
        """Send ``job`` (or wait for the send already started) and record the outcome."""
        assert self._pool is not None
        if sent is None:
            sent = asyncio.get_running_loop().run_in_executor(self._pool, self.attempt, job)
        outcome = await sent
        try:
            pending = await asyncio.to_thread(self.record, job, outcome, self.clock.now())
        except Exception:
            # The send happened and was not recorded: the lease expires and it is sent again.
            log.exception("recording notification %s failed", job.id)
            return
        if pending:  # a retry or the next channel may be due before the loop would wake
            self._wake.set()

    def _finished(self, task: asyncio.Task[None]) -> None:
        # Only a loop waiting for a free slot needs waking: a claim per finished send was a
        # write transaction per page for nothing (and on SQLite one more writer queueing).
        was_full = len(self._inflight) >= self.concurrency
        self._inflight.discard(task)
        if was_full:
            self._wake.set()

    # -- the steps -----------------------------------------------------------------------------

    def claim(self, session: Session, now: datetime, limit: int) -> list[Job]:
        """Lease up to ``limit`` due rows to this process (flushes; the caller commits)."""
        connection = session.connection()
        locks = connection.dialect.name == "postgresql"
        ids = connection.execute(CANDIDATES[locks], {"now": now, "limit": limit}).scalars().all()
        if not ids:
            return []
        lease_until = now + self.lease
        # The UPDATE checks each row again: another process may have leased it since the SELECT.
        claimed = connection.execute(LEASE_ROWS, {"ids": ids, "now": now, "lease": lease_until}).all()
        jobs = []
        for row in claimed:
            try:
                jobs.append(job_of(row, lease_until))
            except ValueError as exc:  # a row no code can read would otherwise be claimed forever
                connection.execute(UNREADABLE, {"id_": row.id, "error": f"unreadable: {exc}"})
        return sorted(jobs, key=lambda j: j.id)

    def next_due_at(self, session: Session) -> datetime | None:
        """When a pending row next becomes claimable: its due time, or its lease's end if later."""
        value = session.connection().scalar(_NEXT_READY)
        if isinstance(value, str):  # SQLite returns the expression's value as stored text
            value = datetime.fromisoformat(value)
        return None if value is None else utc(value)

    def attempt(self, job: Job) -> Outcome:
        """Send one claimed row on its current channel (in a worker thread); not tried when its
        endpoint hangs and already holds as many sends as the bulkhead allows."""
        with self.bulkhead.slot(job.url) as send:
            if not send.allowed:
                return Outcome(self.clock.now(), 0.0, None, deferred=True)
            outcome = self._send(job)
            send.ended(timed_out=outcome.error is not None and outcome.error.timed_out)
            self.health.attempted(job.url, outcome.error, notification=job.id)
            return outcome

    def _send(self, job: Job) -> Outcome:
        at, started = self.clock.now(), time.monotonic()
        try:
            self.notifier.send(job.url, job.title, job.body)
            error = None
        except TransportError as exc:
            error = exc
        except Exception as exc:  # a notifier's bug must not stop the others: retried, then given up
            log.exception("notifier raised for notification %s", job.id)
            error = TransportError(f"{type(exc).__name__}: {exc}")
        seconds = time.monotonic() - started
        if self.metrics is not None:
            self.metrics.notification_send_seconds.observe(seconds)
        return Outcome(at, seconds, error)

    def record(self, job: Job, outcome: Outcome, now: datetime) -> bool:
        """Write the attempt, its event, and where the row goes next (one transaction); whether
        the row is still pending (a retry, or its next channel)."""
        if outcome.deferred:
            return self._put_back(job, now)
        result, values, payload = self.policy.decide(job, outcome.error, now)
        target = redact(job.url)
        attempt = {
            "notification_id": job.id,
            "channel": job.channel,
            "target": target[:255],
            "at": outcome.at,
            "duration_ms": round(outcome.seconds * 1000, 3),
            "ok": outcome.error is None,
            "permanent": bool(outcome.error and outcome.error.permanent),
            "error": None if outcome.error is None else str(outcome.error),
        }
        with self.store.write() as session:
            connection = session.connection()
            connection.execute(ATTEMPT, attempt)
            changed = connection.execute(
                finish(tuple(sorted(values))),
                {"id_": job.id, "lease": job.lease_until, **{f"v_{k}": v for k, v in values.items()}},
            )
            if rowcount(changed) == 0:
                payload["superseded"] = True  # cancelled (acknowledged) or re-claimed meanwhile
            append(
                session,
                Event(
                    f"notification.{result}",
                    job.subject,
                    now,
                    payload={
                        "notification": job.id,
                        "recipient": job.recipient,
                        "state": job.state,
                        "step": job.step,
                        "channel": job.channel,
                        "target": target,
                        "attempt": job.attempts + 1,
                        "by": self.owner,
                        **payload,
                    },
                ),
            )
        if self.metrics is not None:
            self.metrics.notifications_sent.labels(result).inc()
        return rowcount(changed) == 1 and "status" not in values

    def _put_back(self, job: Job, now: datetime) -> bool:
        """Free a row not tried (see ``Bulkhead``), due ``DEFER`` later: no attempt, no event."""
        with self.store.write() as session:
            changed = session.connection().execute(
                finish(("due_at",)), {"id_": job.id, "lease": job.lease_until, "v_due_at": now + DEFER}
            )
        if self.metrics is not None:
            self.metrics.notifications_sent.labels("deferred").inc()
        return rowcount(changed) == 1
