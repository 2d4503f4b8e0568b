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
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar, cast

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from pydantic import BaseModel
from sqlalchemy import Table, delete, func, select, text, update
from sqlalchemy.orm import Session

from maintd.alerts import admission
from maintd.alerts.formats import alertmanager, native, pagerduty
from maintd.alerts.formats.alertmanager import AlertmanagerWebhook
from maintd.alerts.formats.native import NativeAlerts
from maintd.alerts.formats.pagerduty import PagerDutyEvent
from maintd.alerts.model import AlertIn
from maintd.api.deps import AppContext, poke
from maintd.api.ingest import View, _ingest
from maintd.clock import Clock
from maintd.incidents.committer import MAX_ALERTS, AlertRequest, Work
from maintd.store.db import Store
from maintd.store.intake_tables import AlertIntakeRow
from maintd.store.outage import unavailable

log = logging.getLogger(__name__)

POLL = 0.05  # seconds between looks at an empty journal (MAINTD_INTAKE_POLL)
RETRY = 1.0  # seconds before trying again after a failure the rows are not to blame for
FIRST_PAGE = 16  # rows read first; later pages are sized by the alerts per row seen so far
MAX_PAGE = 500
# pg_try_advisory_xact_lock key for "one drain at a time" ("maintd" in ASCII, then 2).
_DRAIN_LOCK = 0x6D61_696E_7464_0002
# Outcomes after which this process's engine acts at once (as api.ingest's _accept).
_CHANGES_INCIDENTS = frozenset({"created", "unmuted", "resolved", "acknowledged"})
M = TypeVar("M", bound=BaseModel)
_journal = cast(Table, AlertIntakeRow.__table__)


class BadRow(Exception):
    """A journaled body that cannot become alerts: no transaction will ever store it."""


@dataclass(frozen=True)
class Journaled:
    """One ``alert_intake`` row as the drain reads it."""

    id: int
    source: str
    actor: str
    integration: str | None
    dedup_key: str | None
    body: bytes


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
                wait = 0.0 if drained.progressed else self.poll
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
        if self._oldest() is None:
            return Drained()  # the usual poll: one read of the partial index, no write lock
        taken: list[int] = []
        try:
            with self.ctx.store.write() as session:
                if not _first_drainer(session):
                    return Drained(busy=True)
                return self._batch(session, taken)
        except Exception as exc:
            if unavailable(exc) or not taken:
                raise
            log.warning("storing %d intake rows together failed (%s); storing each alone", len(taken), exc)
        done = Drained()
        for row_id in taken:
            done.add(self._alone(row_id))
        return done

    def _oldest(self) -> int | None:
        with self.ctx.store.read() as session:
            oldest = select(_journal.c.id).where(_journal.c.error.is_(None)).order_by(_journal.c.id).limit(1)
            return session.scalar(oldest)

    def _batch(self, session: Session, taken: list[int]) -> Drained:
        """Read, parse, ingest and delete; ``taken`` gets every id read (for the retry alone)."""
        done = Drained()
        requests: list[AlertRequest] = []
        stored: list[int] = []
        alerts, after, page = 0, 0, FIRST_PAGE
        while True:
            found = [_journaled(r) for r in session.execute(_waiting(session, after, page))]
            for row in found:
                try:
                    request = _request(row)
                except BadRow as exc:
                    done.failed[row.id] = _set_error(session, row.id, str(exc))
                    taken.append(row.id)
                    continue
                if requests and alerts + len(request.alerts) > self.max_alerts:
                    return self._store(session, requests, stored, done)  # the rest: the next batch
                requests.append(request)
                stored.append(row.id)
                taken.append(row.id)
                alerts += len(request.alerts)
            if len(found) < page or alerts >= self.max_alerts:
                return self._store(session, requests, stored, done)
            after = found[-1].id
            # The next page holds about the alerts still allowed, at the alerts per row seen so far.
            per_row = max(1, -(-alerts // max(1, len(stored))))
            page = max(1, min(MAX_PAGE, (self.max_alerts - alerts) // per_row))

    def _store(
        self, session: Session, requests: list[AlertRequest], ids: list[int], done: Drained
    ) -> Drained:
        if requests:
            views = self.work(session, requests)
            for request, answer in zip(requests, views, strict=True):
                done.outcomes += [
                    (a.source, v["outcome"]) for a, v in zip(request.alerts, answer, strict=True)
                ]
            session.execute(delete(_journal).where(_journal.c.id.in_(ids)))
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
                return self._store(session, [_request(_journaled(found))], [row_id], Drained())
        except Exception as exc:
            if unavailable(exc):
                raise
            why = str(exc) if isinstance(exc, BadRow) else f"{type(exc).__name__}: {exc}"
            with self.ctx.store.write() as session:
                error = _set_error(session, row_id, why)
            return Drained(failed={row_id: error})


def _waiting(session: Session, after: int, limit: int) -> Any:
    # ``error IS NULL`` as written, for SQLite's partial index; FOR UPDATE is PostgreSQL's alone.
    query = (
        select(
            _journal.c.id,
            _journal.c.source,
            _journal.c.actor,
            _journal.c.integration,
            _journal.c.dedup_key,
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
    return Journaled(row.id, row.source, row.actor, row.integration, row.dedup_key, bytes(row.body))


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


# -- a journaled body as alerts ------------------------------------------------------------------


def _request(row: Journaled) -> AlertRequest:
    """The row's alerts, as its route would have made them; BadRow if they cannot be made."""
    parse = _PARSERS.get(row.source)
    if parse is None:
        raise BadRow(f"unknown source {row.source!r}")
    try:
        return AlertRequest(parse(row), row.actor)
    except admission.Rejected as rejected:
        raise BadRow(f"{row.source} body not valid: {rejected.detail}") from None


def _document(model: type[M], body: bytes) -> M:
    # The intake's and the routes' own rules (maintd.alerts.admission), so the same body passes.
    return admission.validate(model, admission.parse_json(body))


def _native(row: Journaled) -> Sequence[AlertIn]:
    return native.to_alerts(_document(NativeAlerts, row.body), integration=row.integration)


def _alertmanager(row: Journaled) -> Sequence[AlertIn]:
    if row.integration is None:
        raise BadRow("an alertmanager row names no integration")
    webhook = _document(AlertmanagerWebhook, row.body)
    alerts = alertmanager.to_alerts(webhook, integration=row.integration)
    for sent, ours in alertmanager.fingerprint_mismatches(webhook, alerts):
        log.warning("alertmanager %s: fingerprint %s sent, %s from the labels", row.integration, sent, ours)
    if webhook.truncatedAlerts:
        log.warning("alertmanager %s: %d alerts left out", row.integration, webhook.truncatedAlerts)
    return alerts


def _pagerduty(row: Journaled) -> Sequence[AlertIn]:
    if row.integration is None or row.dedup_key is None:
        raise BadRow("a pagerduty row needs its integration and the dedup_key answered")
    event = _document(PagerDutyEvent, row.body)
    return [pagerduty.to_alert(event, integration=row.integration, dedup_key=row.dedup_key)]


_PARSERS: dict[str, Callable[[Journaled], Sequence[AlertIn]]] = {
    "native": _native,
    "alertmanager": _alertmanager,
    "pagerduty": _pagerduty,
}


# -- the backlog at scrape time ------------------------------------------------------------------


class BacklogCollector(Collector):
    """``maintd_intake_backlog``, ``maintd_intake_oldest_seconds`` and ``maintd_intake_failed_rows``,
    read from the journal at each scrape. A database that cannot be read gives no series."""

    def __init__(self, store: Store, clock: Clock) -> None:
        self.store, self.clock = store, clock

    def describe(self) -> list[GaugeMetricFamily]:
        return []  # read at scrape time; describing would query at registration

    def collect(self) -> Iterator[GaugeMetricFamily]:
        waiting = _journal.c.error.is_(None)
        try:
            with self.store.read() as session:
                rows = session.execute(
                    select(waiting.label("waiting"), func.count(), func.min(_journal.c.received_at)).group_by(
                        waiting
                    )
                ).all()
        except Exception as exc:  # a scrape must not fail because the store is away
            log.warning("intake backlog not read for /metrics: %s", str(exc).splitlines()[0])
            return
        counts = {bool(w): (n, oldest) for w, n, oldest in rows}
        backlog, oldest = counts.get(True, (0, None))
        age = max(0.0, (self.clock.now() - oldest).total_seconds()) if oldest is not None else 0.0
        failed, _ = counts.get(False, (0, None))
        yield GaugeMetricFamily("maintd_intake_backlog", "Intake journal rows waiting", value=backlog)
        yield GaugeMetricFamily(
            "maintd_intake_oldest_seconds", "Age of the oldest waiting intake row (0: none)", value=age
        )
        yield GaugeMetricFamily("maintd_intake_failed_rows", "Intake rows kept with an error", value=failed)
