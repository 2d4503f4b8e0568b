"""Benchmark 2: claim, run and record N trivial runs that are all due at once.

``dispatch``: the two halves one after the other, each timed on its own:
  claim  = ``Engine.tick(now)`` until it returns no orders (CLAIM_BATCH rows a tick,
           one transaction each, inserting the 'running' run rows);
  record = ``Runner.run_all(orders)``: execute the no-op kind under the plan's
           concurrency limit, the recorder writing results in batches, until
           ``flush()`` says every result is stored.
``dispatch-loop``: the engine's own scheduler loop (``Engine.start()``), which hands
  each claimed batch to the runner while it claims the next; timed from start until
  every result is stored.
Both check afterwards that the store holds N finished runs and N idle schedule rows.
"""

from __future__ import annotations

import asyncio
import time

from sqlalchemy import func, select

from bench.common import DUE_NOW, T0, Result, Shape, load, open_store, registry
from maintd.clock import FakeClock
from maintd.engine import Engine
from maintd.settings import Settings
from maintd.store.db import Store
from maintd.store.models import RunRow, ScheduleRow

TARGET_RATE = 2_000.0


def run(url: str, store_kind: str, shape: Shape, quick: bool) -> Result:
    return asyncio.run(_sequential(url, store_kind, shape))


def run_loop(url: str, store_kind: str, shape: Shape, quick: bool) -> Result:
    return asyncio.run(_pipelined(url, store_kind, shape))


async def _sequential(url: str, store_kind: str, shape: Shape) -> Result:
    reg = registry()
    loaded = load(shape, DUE_NOW, reg)
    store = open_store(url)
    try:
        clock = FakeClock(T0)
        engine = Engine(Settings(database_url=url), store=store, registry=reg, clock=clock)
        engine.activate(loaded, "bench", "bench")
        now = clock.now()
        orders = []
        ticks = 0
        start = time.perf_counter()
        while True:
            batch, _ = engine.tick(now)
            ticks += 1
            if not batch:
                break
            orders.extend(batch)
        claimed = time.perf_counter()
        await engine.runner.run_all(orders)
        recorded = time.perf_counter()
        await engine.runner.stop(1.0)
        _verify(store, shape.rows, len(orders))
    finally:
        store.dispose()
    claim_s, record_s, total_s = claimed - start, recorded - claimed, recorded - start
    rate = shape.rows / total_s
    return Result(
        "dispatch",
        store_kind,
        shape.name,
        f"{rate:,.0f} runs/s",
        f">= {TARGET_RATE:,.0f} runs/s",
        rate >= TARGET_RATE,
        f"{total_s:.2f} s = claim {claim_s:.2f} s ({ticks} ticks)"
        f" + run & record {record_s:.2f} s ({shape.rows / record_s:,.0f}/s)",
        {
            "runs": shape.rows,
            "total_s": total_s,
            "claim_s": claim_s,
            "record_s": record_s,
            "ticks": ticks,
            "runs_per_s": rate,
            "concurrency": loaded.plan.runner.concurrency,
        },
    )


async def _pipelined(url: str, store_kind: str, shape: Shape) -> Result:
    reg = registry()
    loaded = load(shape, DUE_NOW, reg)
    store = open_store(url)
    try:
        clock = FakeClock(T0)
        engine = Engine(Settings(database_url=url), store=store, registry=reg, clock=clock)
        engine.activate(loaded, "bench", "bench")
        labels = {"kind": "noop", "status": "ok", "state": "finished"}

        def finished() -> float:  # counted as each run is queued for recording
            return engine.metrics.registry.get_sample_value("maintd_runs_total", labels) or 0.0

        start = time.perf_counter()
        engine.start()
        while finished() < shape.rows:
            await asyncio.sleep(0.002)
        await engine.runner.flush()
        recorded = time.perf_counter()
        await engine.stop(1.0)
        _verify(store, shape.rows, shape.rows)
    finally:
        store.dispose()
    total_s = recorded - start
    rate = shape.rows / total_s
    return Result(
        "dispatch-loop",
        store_kind,
        shape.name,
        f"{rate:,.0f} runs/s",
        f">= {TARGET_RATE:,.0f} runs/s",
        rate >= TARGET_RATE,
        f"{total_s:.2f} s, claiming and recording overlapped",
        {"runs": shape.rows, "total_s": total_s, "runs_per_s": rate},
    )


def _verify(store: Store, expected: int, orders: int) -> None:
    with store.read() as session:
        done = session.scalar(select(func.count()).select_from(RunRow).where(RunRow.state == "finished"))
        idle = session.scalar(
            select(func.count()).select_from(ScheduleRow).where(ScheduleRow.running_run_id.is_(None))
        )
    if not orders == done == idle == expected:
        raise AssertionError(
            f"expected {expected} claimed, finished and idle; got {orders} claimed, {done} finished runs,"
            f" {idle} idle schedule rows"
        )
