"""Group commit into the journal: requests queue, one thread stores all that is queued at once.

The writer thread takes everything waiting (up to ``MAX_BATCH`` requests or ``MAX_BATCH_BYTES``
of bodies), inserts it with one statement and commits, then hands each request its id on the
event loop. A commit costs about the same for one row or hundreds, so under load each request
pays a share of one. A request is answered only after its row is committed (or with a 503
saying nothing was stored); a request waits at most ``DEADLINE`` seconds for that.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import queue
import threading
import time
from dataclasses import dataclass

from maintd.alerts import admission
from maintd.intake.database import Database, Row, Unavailable

log = logging.getLogger(__name__)

MAX_BATCH = 500  # requests in one transaction
MAX_BATCH_BYTES = 16 * 1024 * 1024  # of bodies in one transaction
MAX_PENDING = 4096  # requests waiting for the writer before new ones get a 503 at once
MAX_PENDING_BYTES = 64 * 1024 * 1024
DEADLINE = 10.0  # seconds a request waits for its commit, as maintd.store.outage.DEADLINE

Outcome = int | str  # the row's id, or why it was not stored


@dataclass(eq=False, slots=True)
class _Waiting:
    row: Row
    future: asyncio.Future[Outcome]
    deadline: float


class Journal:
    """The intake's writer: ``await store(row)`` returns the committed row's id.

    Requests gather on the event loop while the writer commits; when it is done, it gets all
    that gathered at once. One hand-over between the threads per commit, not per request:
    each wakes the other thread and moves the GIL, which cost more than the insert.
    """

    def __init__(self, database: Database, *, deadline: float = DEADLINE) -> None:
        self._database = database
        self._deadline = deadline
        self._queue: queue.SimpleQueue[list[_Waiting] | None] = queue.SimpleQueue()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        # Touched on the event loop only: what waits, oldest first (for the deadline sweep), and
        # what gathers for the writer's next commit.
        self._waiting: collections.deque[_Waiting] = collections.deque()
        self._gathered: list[_Waiting] = []
        self._writing = False
        self._pending_bytes = 0
        self._sweeper: asyncio.TimerHandle | None = None
        self.commits = 0  # transactions committed, for /metrics
        self.rows = 0

    @property
    def pending(self) -> int:
        return len(self._waiting)

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._thread = threading.Thread(target=self._run, name="intake-writer", daemon=True)
        self._thread.start()
        self._sweep()

    async def stop(self) -> None:
        """End the writer once it has stored what it was given (the server waited for every answer)."""
        if self._sweeper is not None:
            self._sweeper.cancel()
        self._queue.put(None)
        if self._thread is not None:
            await asyncio.get_running_loop().run_in_executor(None, self._thread.join, DEADLINE)

    async def store(self, row: Row) -> int:
        """Queue ``row`` for the next commit and return its id once committed.

        Raises maintd.alerts.admission.Rejected (503) when it was not stored, or not in time.
        """
        assert self._loop is not None, "start() first"
        if len(self._waiting) >= MAX_PENDING or self._pending_bytes + len(row.body) > MAX_PENDING_BYTES:
            raise admission.unavailable(
                f"{len(self._waiting)} requests already wait for the database to store them"
            )
        waiting = _Waiting(row, self._loop.create_future(), time.monotonic() + self._deadline)
        self._waiting.append(waiting)
        self._pending_bytes += len(row.body)
        self._gathered.append(waiting)
        if not self._writing:
            self._hand_over()
        try:
            outcome = await waiting.future
        finally:
            self._pending_bytes -= len(row.body)
        if isinstance(outcome, str):
            raise admission.unavailable(outcome)
        return outcome

    # -- on the event loop ----------------------------------------------------

    def _hand_over(self) -> None:
        """Give the idle writer what gathered, up to one transaction's worth."""
        gathered, size, cut = self._gathered, 0, 0
        while cut < len(gathered) and cut < MAX_BATCH and size < MAX_BATCH_BYTES:
            size += len(gathered[cut].row.body)
            cut += 1
        batch, self._gathered = gathered[:cut], gathered[cut:]
        self._writing = True
        self._queue.put(batch)

    def _settle(self, batch: list[_Waiting], outcomes: list[Outcome]) -> None:
        self._writing = False
        if self._gathered:
            self._hand_over()  # first: the writer works while the answers go out
        for waiting, outcome in zip(batch, outcomes, strict=True):
            if not waiting.future.done():  # else it gave up at its deadline
                waiting.future.set_result(outcome)
        self._forget_done()

    def _sweep(self) -> None:
        """Once a second: what has waited past its deadline gets its 503 (its commit may land later)."""
        now = time.monotonic()
        for waiting in self._waiting:
            if waiting.deadline > now:
                break  # oldest first: the rest are younger
            if not waiting.future.done():
                waiting.future.set_result(f"the database did not answer within {self._deadline:g} s")
        self._forget_done()
        assert self._loop is not None
        self._sweeper = self._loop.call_later(1.0, self._sweep)

    def _forget_done(self) -> None:
        waiting = self._waiting
        while waiting and waiting[0].future.done():
            waiting.popleft()

    # -- in the writer thread -------------------------------------------------

    def _run(self) -> None:
        while (batch := self._queue.get()) is not None:
            outcomes = self._write([w.row for w in batch])
            assert self._loop is not None
            self._loop.call_soon_threadsafe(self._settle, batch, outcomes)
        self._database.close()

    def _write(self, rows: list[Row]) -> list[Outcome]:
        try:
            return list(self._insert(rows))
        except Unavailable as exc:
            if not exc.refused or len(rows) == 1:
                log.warning("journal: %d request(s) not stored: %s", len(rows), exc.reason)
                return [exc.reason] * len(rows)
        # The database refused the shared transaction's data: each request alone, so that a row
        # it refuses fails alone and the others are stored.
        outcomes: list[Outcome] = []
        for row in rows:
            try:
                outcomes.append(self._insert([row])[0])
            except Unavailable as alone:
                log.error("journal: a %s request of %s not stored: %s", row.source, row.actor, alone.reason)
                outcomes.append(alone.reason)
        return outcomes

    def _insert(self, rows: list[Row]) -> list[int]:
        try:
            ids = self._database.insert(rows)
        except Unavailable as exc:
            if not exc.lost:
                raise
            # A connection lost since the last commit (a database restarted meanwhile): once more
            # on a new one. Rows of a commit whose answer was lost may be stored twice; the drain's
            # pipeline takes a repeated delivery as the same alert.
            ids = self._database.insert(rows)
        self.commits += 1
        self.rows += len(rows)
        return ids
