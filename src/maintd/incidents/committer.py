"""Group commit: concurrent alert requests share one write transaction.

A request queues its alerts and waits. One writer at a time takes everything queued, runs
each request's alerts through the pipeline in ONE transaction, commits once, and only then
answers every request in it. While it writes, new requests queue up for the next
transaction, so the busier the senders, the more requests share a commit (and its fsync on
SQLite, its round trips and the ingest lock on PostgreSQL); a lone request is written at
once, with no added wait.

When a shared transaction fails, it is rolled back and each of its requests is tried again
in a transaction of its own, so a request that cannot be stored fails alone. No request is
answered before the transaction holding its alerts has committed.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Generic, TypeVar

from sqlalchemy.orm import Session

from maintd.alerts.model import AlertIn
from maintd.store.db import Store
from maintd.store.outage import bounded, reason, unavailable

log = logging.getLogger(__name__)

T = TypeVar("T")
MAX_ALERTS = 2000  # per transaction: bounds how long one commit keeps the others waiting


@dataclass(frozen=True)
class AlertRequest:
    alerts: Sequence[AlertIn]
    actor: str
    received_at: datetime | None = None  # when taken, if before its transaction (maintd intake's journal)


@dataclass
class _Queued(Generic[T]):
    request: AlertRequest
    answer: asyncio.Future[T]


# What each request's alerts become, in order, inside the shared transaction (flushes only).
Work = Callable[[Session, list[AlertRequest]], list[T]]


class GroupCommitter(Generic[T]):
    """Runs ``work`` for queued requests, several per transaction; see the module docstring."""

    def __init__(self, store: Store, work: Work[T], *, max_alerts: int = MAX_ALERTS) -> None:
        self._store = store
        self._work = work
        self._max_alerts = max_alerts
        self._queue: list[_Queued[T]] = []
        self._writer: asyncio.Task[None] | None = None

    async def submit(self, alerts: Sequence[AlertIn], *, actor: str) -> T:
        """``work``'s result for these alerts, once they are committed; its exception if they are not."""
        loop = asyncio.get_running_loop()
        answer: asyncio.Future[T] = loop.create_future()
        self._queue.append(_Queued(AlertRequest(alerts, actor), answer))
        if self._writer is None:
            self._writer = loop.create_task(self._write(), name="maintd-group-commit")
        # A sender that hangs up is not waited for, but its alerts are stored all the same; so
        # are those of a request answered 503 because the database did not answer in time.
        return await bounded(asyncio.shield(answer))

    async def _write(self) -> None:
        try:
            while self._queue:
                batch = self._take()
                outcomes = await asyncio.to_thread(self._commit, batch)
                for queued, outcome in zip(batch, outcomes, strict=True):
                    if queued.answer.done():
                        continue
                    if isinstance(outcome, BaseException):
                        queued.answer.set_exception(outcome)
                    else:
                        queued.answer.set_result(outcome)
        finally:
            self._writer = None

    def _take(self) -> list[_Queued[T]]:
        """The oldest requests, up to ``max_alerts`` alerts (always at least one request)."""
        count, taken = 0, 0
        for queued in self._queue:
            if taken and count + len(queued.request.alerts) > self._max_alerts:
                break
            count += len(queued.request.alerts)
            taken += 1
        batch, self._queue = self._queue[:taken], self._queue[taken:]
        return batch

    def _commit(self, batch: list[_Queued[T]]) -> list[T | BaseException]:
        """In a worker thread: the batch in one transaction, or, if that fails, each on its own."""
        try:
            with self._store.write() as session:
                results: list[T | BaseException] = list(self._work(session, [q.request for q in batch]))
            return results
        except Exception as exc:
            if len(batch) == 1:
                return [exc]
            if unavailable(exc):  # alone, each would fail the same way: answer all (503) at once
                log.warning("%d alert requests not stored: database unavailable: %s", len(batch), reason(exc))
                return [exc] * len(batch)
            log.warning("a transaction of %d alert requests failed (%s); storing each alone", len(batch), exc)
        return [self._alone(q) for q in batch]

    def _alone(self, queued: _Queued[T]) -> T | BaseException:
        try:
            with self._store.write() as session:
                (result,) = self._work(session, [queued.request])
            return result
        except Exception as exc:
            return exc
