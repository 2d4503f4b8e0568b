"""Benchmark: 100,000 pending escalation timers, fired by a loop on the real clock.

The timers' deadlines are spread evenly over a span starting a few seconds after
they are all stored. A loop like the engine's (ask for the earliest pending due
time, sleep until it, fire a batch with ``timers.fire_due``, commit) fires them.
Two cases: ``claim`` (the handler does nothing: the timers' own cost, deadlines
over 20 s) and ``page`` (the handler queues one notification per timer with
``notify.outbox.enqueue``, as an escalation step does per recipient; deadlines
over 300 s, since each page is a row written). Reported: how late each timer
fired after its deadline (max and p99, counted when its batch committed), how
many fired, how many fired twice (handler calls beyond one, and notification rows
beyond one per timer), and the rate that was sustained.
"""

from __future__ import annotations

import time
from collections import Counter
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, func, insert, select
from sqlalchemy.orm import Session

from bench.common import Result, Shape, open_store, percentile
from maintd import timers
from maintd.notify.message import Message
from maintd.notify.outbox import Recipient, enqueue
from maintd.store.db import Store
from maintd.store.models import NotificationRow, TimerRow

TARGET = "every timer within 1 s, none twice"
TIMERS, QUICK_TIMERS = 100_000, 10_000
SPREADS = {"claim": timedelta(seconds=20), "page": timedelta(seconds=300)}  # first to last deadline
LEAD = timedelta(seconds=3)  # from the last row stored to the first deadline
BATCH = 500
CHUNK = 5_000  # rows per INSERT while storing them
MESSAGE = Message(title="P1 incident: bench", summary="bench", state="triggered")
RECIPIENT = Recipient("person:bench", [])


class Handler:
    """Counts its calls per timer (to catch a second firing); ``page``: queues one notification."""

    def __init__(self, page: bool) -> None:
        self.calls: Counter[int] = Counter()
        self.page = page

    def __call__(self, session: Session, timer: TimerRow, now: datetime) -> None:
        self.calls[timer.id] += 1
        if not self.page:
            return
        enqueue(
            session,
            subject=timer.subject,
            incident_id=None,
            recipient=RECIPIENT,
            state="triggered",
            step=timer.step,
            message=MESSAGE,
            now=now,
        )


def run(url: str, store_kind: str, shape: Shape, quick: bool) -> list[Result]:
    return [
        _case(url, store_kind, case, spread / 10 if quick else spread, quick)
        for case, spread in SPREADS.items()
    ]


def _case(url: str, store_kind: str, case: str, spread: timedelta, quick: bool) -> Result:
    count = QUICK_TIMERS if quick else TIMERS
    store = open_store(url)
    try:
        with store.write() as s:  # the cases share one scratch database
            s.execute(delete(TimerRow))
            s.execute(delete(NotificationRow))
        stored_s, first_due = _store_timers(store, count, spread)
        handler = Handler(page=case == "page")
        lateness, loop_s = _fire_all(store, handler, first_due + spread)
        with store.read() as s:
            rows = s.scalar(select(func.count()).select_from(NotificationRow)) or 0
            pending = s.scalar(select(func.count()).select_from(TimerRow).where(TimerRow.fired_at.is_(None)))
    finally:
        store.dispose()
    twice = sum(1 for n in handler.calls.values() if n > 1)
    if case == "page":
        twice += max(rows - len(handler.calls), 0)
    worst, p99 = max(lateness), percentile(lateness, 99)
    fired = len(handler.calls)
    rate = fired / spread.total_seconds()
    return Result(
        "timers",
        store_kind,
        f"{count:,} timers, {case}",
        f"max {worst * 1000:.0f} ms late, p99 {p99 * 1000:.0f} ms",
        TARGET,
        worst <= 1.0 and twice == 0 and fired == count and pending == 0,
        f"fired {fired:,} of {count:,}, twice {twice}, over {spread.total_seconds():.0f} s "
        f"({rate:,.0f}/s sustained); stored in {stored_s:.1f} s",
        {
            "case": case,
            "timers": count,
            "fired": fired,
            "twice": twice,
            "pending_after": pending,
            "max_late_ms": worst * 1000,
            "p99_late_ms": p99 * 1000,
            "p50_late_ms": percentile(lateness, 50) * 1000,
            "spread_s": spread.total_seconds(),
            "rate_per_s": rate,
            "store_s": stored_s,
            "loop_s": loop_s,
        },
    )


def _store_timers(store: Store, count: int, spread: timedelta) -> tuple[float, datetime]:
    """Store ``count`` pending timers; the first deadline LEAD after storing is expected to end.

    Deadlines are fixed when a row is stored, so storing is timed first on one chunk.
    """
    now = datetime.now(UTC)
    started = time.perf_counter()
    _insert(store, range(CHUNK), now + timedelta(days=1), spread / count, now)
    probe_s = time.perf_counter() - started
    with store.write() as s:
        s.execute(delete(TimerRow))
    first_due = datetime.now(UTC) + timedelta(seconds=probe_s * count / CHUNK * 1.5) + LEAD
    started = time.perf_counter()
    for begin in range(0, count, CHUNK):
        _insert(store, range(begin, min(begin + CHUNK, count)), first_due, spread / count, now)
    with store.engine.connect() as conn:
        # As autovacuum (PostgreSQL) would soon after a bulk load: without statistics the planner
        # takes the fresh table for tiny and scans all of it instead of the pending-timers index.
        conn.exec_driver_sql("ANALYZE timers")
        conn.commit()
    if datetime.now(UTC) > first_due:
        raise RuntimeError("storing the timers took longer than estimated: the first deadlines passed")
    return time.perf_counter() - started, first_due


def _insert(store: Store, rows: range, first_due: datetime, step: timedelta, now: datetime) -> None:
    with store.write() as s:
        s.execute(
            insert(TimerRow),
            [
                {
                    "kind": "escalate",
                    "subject": f"incident:{i}",
                    "step": "c0.l1",
                    "due_at": first_due + step * i,
                    "payload": {"incident": i},
                    "created_at": now,
                }
                for i in rows
            ],
        )


def _fire_all(store: Store, handler: Handler, last_due: datetime) -> tuple[list[float], float]:
    """The engine's loop on the real clock until nothing is pending; each timer's lateness in seconds."""
    handlers: dict[str, timers.Handler] = {"escalate": handler}
    lateness: list[float] = []
    started = time.perf_counter()
    give_up = last_due + timedelta(minutes=5)
    while datetime.now(UTC) < give_up:
        with store.read() as s:
            next_due = timers.next_due_at(s, kinds=list(handlers))
        if next_due is None:
            break
        wait = (next_due - datetime.now(UTC)).total_seconds()
        if wait > 0:
            time.sleep(min(wait, 1.0))
        while True:
            now = datetime.now(UTC)
            with store.write() as s:
                fired = timers.fire_due(s, now, owner="bench", handlers=handlers, limit=BATCH)
            done = datetime.now(UTC)  # the pages are committed: that is when they count as fired
            lateness += [(done - f.due_at).total_seconds() for f in fired]
            if len(fired) < BATCH:
                break
    return lateness, time.perf_counter() - started
