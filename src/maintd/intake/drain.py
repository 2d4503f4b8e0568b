"""The drain: alert requests journaled by ``maintd intake`` through the pipeline, in ``maintd serve``.

``maintd intake`` answers a sender once the request's body is committed to ``alert_intake``;
the drain, in every process that serves the API, makes alerts and incidents of those rows:
oldest first, one transaction per batch (up to ``MAX_ALERTS`` alerts), the same path as the
synchronous routes (``maintd.api.ingest._ingest``: pipeline, timers fired, outcomes), the rows
deleted in that transaction. A row is stored once or not at all.

Several API replicas on PostgreSQL: one drains at a time (a transaction-scoped advisory lock,
tried, never waited for), so the journal is taken in order of arrival (a resolve after its
firing); its rows are also taken ``FOR UPDATE SKIP LOCKED``, so no row is ever taken twice.

A failing batch is rolled back and each row tried alone; a row that fails alone keeps its body,
gets ``attempts`` + 1 and ``error``, and is skipped from then on (``maintd_intake_failed_total``,
logged with its id): never lost, never blocking the rows behind it. A database outage marks
nothing: the batch is tried again once the database answers.

On SQLite the drain and the intake share one write lock, which SQLite hands to no one in
particular: a drain taking batch after batch kept the intake's writer out for seconds (one
commit in 3 s, measured). So there the drain keeps each batch short and leaves a gap after it
(``Pace``), in which a writer waiting in SQLite's busy handler gets in.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import math
import time
from dataclasses import dataclass, field
from typing import Any, cast

from sqlalchemy import BigInteger, Table, any_, bindparam, delete, func, select, text, update
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session

from maintd.api.deps import AppContext, poke
from maintd.api.ingest import _CHANGES_INCIDENTS, View, _ingest
from maintd.incidents.committer import MAX_ALERTS, AlertRequest, Work
from maintd.intake.rows import BadRow, Journaled, to_request
from maintd.store.intake_tables import AlertIntakeRow
from maintd.store.outage import unavailable

log = logging.getLogger(__name__)

POLL = 0.05  # seconds between looks at an empty journal (MAINTD_INTAKE_POLL)
RETRY = 1.0  # seconds before trying again after a failure the rows are not to blame for
FIRST_PAGE = 16  # rows read first; later pages are sized by the alerts per row seen so far
MAX_PAGE = 500
# pg_try_advisory_xact_lock key for "one drain at a time" ("maintd" in ASCII, then 2).
_DRAIN_LOCK = 0x6D61_696E_7464_0002
_journal = cast(Table, AlertIntakeRow.__table__)
# SQLite's busy handler retries a blocked writer after 1, 2, 5, 10, 15, 20, 25, 25, 25 ms, then
# 50 and 100 (sqlite3.c, sqliteDefaultBusyCallback): within its first 128 ms no gap is longer
# than 25 ms. A gap of 25 ms after each batch held for at most ~100 ms therefore always lets a
# waiting writer in; batches of ~25 ms while the intake is writing keep its wait near 50 ms.
SQLITE_GAP = 0.025
SQLITE_HOLD = 0.1  # seconds a batch may hold the write lock while the intake is quiet
SQLITE_HOLD_BUSY = 0.025  # ... and while it is writing


@dataclass
class Drained:
    """What one call of ``Drain.drain_once`` did; the metrics and the poke follow from it."""

    rows: int = 0  # journal rows stored and deleted
    failed: dict[int, str] = field(default_factory=dict)  # rows given an error: id -> the error
    outcomes: list[tuple[str, str]] = field(default_factory=list)  # (source, outcome) per alert
    busy: bool = False  # another replica is draining

    @property
    def progressed(self) -> bool:
        return bool(self.rows or self.failed)

    def add(self, other: Drained) -> None:
        self.rows += other.rows
        self.failed |= other.failed
        self.outcomes += other.outcomes


@dataclass
class Pace:
    """How many alerts the next batch may take, and the gap after it: on SQLite, batches held
    ``SQLITE_HOLD`` (``SQLITE_HOLD_BUSY`` while the intake writes) at the write-lock time per
    alert measured so far, then ``SQLITE_GAP``; PostgreSQL's row locks need neither."""

    sqlite: bool
    cost: float = 150e-6  # seconds of write lock per alert: a moving average of the batches'
    newest: int = 0  # the newest journal id at the last look
    busy: bool = False  # the intake wrote between the last two looks

    def saw(self, newest: int | None) -> None:
        if newest is not None:
            self.busy = self.newest > 0 and newest > self.newest
            self.newest = max(newest, self.newest)

    def held(self, seconds: float, alerts: int) -> None:
        if alerts:
            self.cost += 0.3 * (seconds / alerts - self.cost)

    def limit(self, max_alerts: int) -> int:
        if not self.sqlite:
            return max_alerts
        hold = SQLITE_HOLD_BUSY if self.busy else SQLITE_HOLD
        return max(1, min(max_alerts, int(hold / self.cost)))

    @property
    def gap(self) -> float:
        return SQLITE_GAP if self.sqlite else 0.0


class Drain:
    """Takes ``alert_intake`` through the pipeline; ``run`` polls it, ``drain_once`` does one batch."""

    def __init__(
        self,
        ctx: AppContext,
        *,
        poll: float = POLL,
        max_alerts: int = MAX_ALERTS,
        work: Work[list[View]] | None = None,
    ) -> None:
        """``work``: what a batch's requests become in its transaction; the synchronous routes'
        ``_ingest`` unless a test puts something around it."""
        if not (math.isfinite(poll) and poll > 0):
            raise ValueError(f"the intake poll interval must be a positive number of seconds, not {poll}")
        self.ctx, self.poll, self.max_alerts = ctx, poll, max_alerts
        self.work: Work[list[View]] = work or functools.partial(_ingest, ctx)
        self.pace = Pace(sqlite=ctx.store.dialect == "sqlite")

    async def run(self, stop: asyncio.Event) -> None:
        """Drain until ``stop`` is set: at once while rows remain, every ``poll`` seconds after.

        The poll is real time on purpose (not the injected clock): it paces I/O, it decides
        nothing. A batch in progress when ``stop`` is set commits or rolls back first.
        """
        while not stop.is_set():
            try:
                drained = await asyncio.to_thread(self.drain_once)
            except Exception:
                log.exception("draining the alert intake failed; trying again in %g s", RETRY)
                wait = RETRY
            else:
                self.after(drained)
                wait = self.pace.gap if drained.progressed else self.poll
            if wait:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), wait)

    def after(self, drained: Drained) -> None:
        """After the commit, in the event loop: the same metrics and poke as the synchronous routes."""
        for source, outcome in drained.outcomes:
            self.ctx.metrics.alerts_received.labels(source, outcome).inc()
        self.ctx.metrics.intake_drained.inc(drained.rows)
        self.ctx.metrics.intake_failed.inc(len(drained.failed))
        for row_id, error in drained.failed.items():
            log.error("alert intake row %d cannot be stored, kept and skipped: %s", row_id, error)
        if any(outcome in _CHANGES_INCIDENTS for _source, outcome in drained.outcomes):
            poke(self.ctx)

    # -- one batch, in a worker thread ---------------------------------------------------------

    def drain_once(self) -> Drained:
        """The oldest waiting rows stored in one transaction, or each alone if that fails.

        Raises only when the database is unavailable (nothing changed then)."""
        if not self._waiting():
            return Drained()  # the usual poll: one read of the partial index, no write lock
        taken: list[int] = []
        try:
            with self.ctx.store.write() as session:
                if not _first_drainer(session):
                    return Drained(busy=True)
                started = time.perf_counter()
                done = self._batch(session, taken, self.pace.limit(self.max_alerts))
            self.pace.held(time.perf_counter() - started, len(done.outcomes))
            return done
        except Exception as exc:
            if unavailable(exc) or not taken:
                raise
            log.warning("storing %d intake rows together failed (%s); storing each alone", len(taken), exc)
        done = Drained()
        for row_id in taken:
            done.add(self._alone(row_id))
        return done

    def _waiting(self) -> bool:
        """Whether a row waits (and on SQLite, the newest id, for the pace). A Core connection, not
        a session: this runs 20 times a second in every API process, idle or not."""
        with self.ctx.store.engine.connect() as conn:
            first, newest = conn.execute(_LOOK_SQLITE if self.pace.sqlite else _LOOK).one()
        self.pace.saw(newest)
        return first is not None

    def _batch(self, session: Session, taken: list[int], limit: int) -> Drained:
        """Read, parse, ingest and delete; ``taken`` gets every id read (for the retry alone)."""
        done = Drained()
        requests: list[AlertRequest] = []
        stored: list[int] = []
        alerts, after, page = 0, 0, min(FIRST_PAGE, limit)
        while True:
            found = [_journaled(r) for r in session.execute(_waiting(session, after, page))]
            for row in found:
                try:
                    request = to_request(row)
                except BadRow as exc:
                    done.failed[row.id] = _set_error(session, row.id, str(exc))
                    taken.append(row.id)
                    continue
                if requests and alerts + len(request.alerts) > limit:
                    return self._store(session, requests, stored, done)  # the rest: the next batch
                requests.append(request)
                stored.append(row.id)
                taken.append(row.id)
                alerts += len(request.alerts)
            if len(found) < page or alerts >= limit:
                return self._store(session, requests, stored, done)
            after = found[-1].id
            # The next page holds about the alerts still allowed, at the alerts per row seen so far.
            per_row = max(1, -(-alerts // max(1, len(stored))))
            page = max(1, min(MAX_PAGE, (limit - alerts) // per_row))

    def _store(
        self, session: Session, requests: list[AlertRequest], ids: list[int], done: Drained
    ) -> Drained:
        if requests:
            views = self.work(session, requests)
            for request, answer in zip(requests, views, strict=True):
                done.outcomes += [
                    (a.source, v["outcome"]) for a, v in zip(request.alerts, answer, strict=True)
                ]
            session.execute(_DELETE[session.get_bind().dialect.name], {"ids": ids})
        done.rows = len(ids)
        return done

    def _alone(self, row_id: int) -> Drained:
        """One row in a transaction of its own; failing that, its error is kept and it is skipped."""
        try:
            with self.ctx.store.write() as session:
                _one_drainer_waiting(session)
                found = session.execute(
                    _waiting(session, row_id - 1, 1).where(_journal.c.id == row_id)
                ).first()
                if found is None:
                    return Drained()  # another drainer stored it meanwhile
                return self._store(session, [to_request(_journaled(found))], [row_id], Drained())
        except Exception as exc:
            if unavailable(exc):
                raise
            why = str(exc) if isinstance(exc, BadRow) else f"{type(exc).__name__}: {exc}"
            with self.ctx.store.write() as session:
                error = _set_error(session, row_id, why)
            return Drained(failed={row_id: error})


# The drained rows' ids: an IN list on SQLite; one array on PostgreSQL, so that the statement's
# text is the same for any number of ids (psycopg parses and prepares it once).
_DELETE = {
    "sqlite": delete(_journal).where(_journal.c.id.in_(bindparam("ids", expanding=True))),
    "postgresql": delete(_journal).where(_journal.c.id == any_(bindparam("ids", type_=ARRAY(BigInteger)))),
}
_OLDEST = select(_journal.c.id).where(_journal.c.error.is_(None)).order_by(_journal.c.id).limit(1)
_LOOK = select(_OLDEST.scalar_subquery(), text("NULL"))
_LOOK_SQLITE = select(_OLDEST.scalar_subquery(), select(func.max(_journal.c.id)).scalar_subquery())


def _waiting(session: Session, after: int, limit: int) -> Any:
    # ``error IS NULL`` as written, for SQLite's partial index; FOR UPDATE is PostgreSQL's alone.
    query = (
        select(
            _journal.c.id,
            _journal.c.source,
            _journal.c.actor,
            _journal.c.integration,
            _journal.c.dedup_key,
            _journal.c.received_at,
            _journal.c.body,
        )
        .where(_journal.c.error.is_(None), _journal.c.id > after)
        .order_by(_journal.c.id)
        .limit(limit)
    )
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    return query


def _journaled(row: Any) -> Journaled:
    return Journaled(
        row.id, row.source, row.actor, row.integration, row.dedup_key, bytes(row.body), row.received_at
    )


def _first_drainer(session: Session) -> bool:
    if session.get_bind().dialect.name != "postgresql":
        return True  # BEGIN IMMEDIATE: SQLite has one writer, and one maintd process
    return bool(session.scalar(text("SELECT pg_try_advisory_xact_lock(:k)"), {"k": _DRAIN_LOCK}))


def _one_drainer_waiting(session: Session) -> None:
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _DRAIN_LOCK})


def _set_error(session: Session, row_id: int, error: str) -> str:
    """Mark the row failed (skipped from now on); the error as stored (its first line, capped)."""
    error = (error.strip().splitlines() or ["unknown error"])[0][:2000]
    session.execute(
        update(_journal)
        .where(_journal.c.id == row_id, _journal.c.error.is_(None))
        .values(attempts=_journal.c.attempts + 1, error=error)
    )
    return error
