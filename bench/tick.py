"""Benchmark 1: ``Engine.tick(now)`` when nothing is due, with N schedule rows stored.

Each tick moves the fake clock on by the scheduler's idle wake-up (2 s), as the
idle loop does, so the heartbeat write (every 5 s) lands in about every third
tick, as in production. Then the same again with nine rows in ten marked running
(as while a large batch is in flight): the notes give that median too.
"""

from __future__ import annotations

import time

from sqlalchemy import update

from bench.common import NOT_DUE, T0, Result, Shape, load, median, open_store, percentile, registry
from maintd.clock import FakeClock
from maintd.engine import IDLE_WAKE, Engine
from maintd.settings import Settings
from maintd.store.models import ScheduleRow

TARGET_MS = 10.0
WARMUP = 5


def run(url: str, store_kind: str, shape: Shape, quick: bool) -> Result:
    ticks = 50 if quick else 200
    reg = registry()
    loaded = load(shape, NOT_DUE, reg)
    store = open_store(url)
    try:
        clock = FakeClock(T0)
        engine = Engine(Settings(database_url=url), store=store, registry=reg, clock=clock)
        start = time.perf_counter()
        engine.activate(loaded, "bench", "bench")
        activate_s = time.perf_counter() - start
        samples = _ticks(engine, clock, ticks)
        with store.write() as session:
            session.execute(
                update(ScheduleRow).where(ScheduleRow.id % 10 != 0).values(running_run_id="bench")
            )
        busy = median(_ticks(engine, clock, ticks))
    finally:
        store.dispose()
    med, p95, worst = median(samples), percentile(samples, 95), max(samples)
    return Result(
        "tick",
        store_kind,
        shape.name,
        f"median {med:.2f} ms, p95 {p95:.2f} ms",
        f"< {TARGET_MS:g} ms",
        med < TARGET_MS and p95 < TARGET_MS,
        f"{ticks} ticks, max {worst:.2f} ms; with 9 rows in 10 running: median {busy:.2f} ms;"
        f" plan activation (sync) took {activate_s:.2f} s",
        {
            "median_ms": med,
            "p95_ms": p95,
            "max_ms": worst,
            "ticks": ticks,
            "rows": shape.rows,
            "activate_s": activate_s,
            "busy_median_ms": busy,
        },
    )


def _ticks(engine: Engine, clock: FakeClock, ticks: int) -> list[float]:
    """Milliseconds per tick (after the warm-up), each finding nothing due."""
    samples: list[float] = []
    for i in range(WARMUP + ticks):
        now = clock.advance(IDLE_WAKE)
        start = time.perf_counter()
        orders, earliest = engine.tick(now)
        elapsed = time.perf_counter() - start
        if orders or earliest is None or earliest <= now:
            raise AssertionError(f"tick at {now} found work ({len(orders)} orders, next {earliest})")
        if i >= WARMUP:
            samples.append(elapsed * 1000)
    return samples
