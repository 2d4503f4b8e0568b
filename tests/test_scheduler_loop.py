"""The engine's own scheduler loop (Engine.start): when it wakes up after runs are recorded."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from pydantic import BaseModel
from sqlalchemy import func, select

from maintd.checks.base import CheckResult, Kind, RunContext, Status
from maintd.engine import Engine
from maintd.registry import Registry
from maintd.settings import Settings
from maintd.store.models import RunRow
from tests.conftest import run

WAIT = 10.0  # seconds: the hard limit of any single wait


class NoConfig(BaseModel):
    pass


class Failing:
    def __init__(self, _config: NoConfig) -> None:
        pass

    async def run(self, ctx: RunContext) -> CheckResult:
        return CheckResult(Status.critical, "down")


class Passing(Failing):
    async def run(self, ctx: RunContext) -> CheckResult:
        return CheckResult(Status.ok, "up")


def engine_with(kind: Kind, store, plan_dir, clock) -> Engine:  # type: ignore[no-untyped-def]
    registry = Registry.default()
    registry.register(kind)
    settings = Settings(database_url=store.url, plan_path=plan_dir)
    return Engine(settings, store=store, registry=registry, clock=clock)


def finished(engine: Engine) -> int:
    with engine.store.read() as s:
        return int(s.scalar(select(func.count()).where(RunRow.state == "finished")) or 0)


async def until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT
    while not condition():
        assert time.monotonic() < deadline, f"gave up waiting until {what}"
        await asyncio.sleep(0.01)


def test_a_retry_due_before_the_idle_wake_up_is_claimed_on_time(store, write_plan, clock):
    plan = write_plan("""
        targets: [{name: h, kind: host}]
        tasks:
          - {name: flaky, kind: failing, targets: [h], schedule: {every: 1h},
             retries: {attempts: 2, backoff: 1s}}
    """)
    engine = engine_with(Kind("failing", NoConfig, Failing, "always critical"), store, plan, clock)
    engine.reload()

    async def go() -> None:
        engine.start()
        await until(lambda: finished(engine) == 1, "the first run is stored")
        # The loop went to sleep until its idle wake-up (2 s) while the run was in flight; the
        # stored run freed its row with a retry due in 1 s, so the loop must wake before then.
        clock.advance(1)
        await until(lambda: finished(engine) == 2, "the retry is stored")
        await engine.stop(0)

    run(go())
    with store.read() as s:
        runs = s.execute(select(RunRow.trigger, RunRow.attempt).order_by(RunRow.started_at)).all()
    assert [tuple(r) for r in runs] == [("schedule", 1), ("retry", 2)]


def test_recorded_runs_due_later_do_not_wake_the_loop(store, write_plan, clock):
    targets = ", ".join(f"{{name: h{i}, kind: host, labels: {{fleet: a}}}}" for i in range(40))
    plan = write_plan(f"""
        runner: {{concurrency: 4}}
        targets: [{targets}]
        tasks:
          - {{name: ping, kind: passing, targets: {{labels: {{fleet: a}}}}, schedule: {{every: 1h}}}}
    """)
    engine = engine_with(Kind("passing", NoConfig, Passing, "always ok"), store, plan, clock)
    engine.reload()

    def ticks() -> float:
        return engine.metrics.registry.get_sample_value("maintd_scheduler_ticks_total") or 0.0

    async def go() -> None:
        engine.start()
        await until(lambda: finished(engine) == 40, "all 40 are stored")
        await engine.runner.flush()  # the runner has told the engine about every batch
        await until(lambda: engine._sleep_until is not None and not engine._wake.is_set(), "it sleeps")
        await engine.stop(0)

    run(go())
    # One tick claims all 40, one more finds nothing idle; the rows the runs freed are due in an
    # hour, so no batch recorded afterwards makes the loop look at the store again.
    assert ticks() == 2


def test_stopping_stores_the_results_still_gathering_for_a_batch(store, write_plan, clock):
    targets = ", ".join(f"{{name: h{i}, kind: host, labels: {{fleet: a}}}}" for i in range(40))
    plan = write_plan(f"""
        targets: [{targets}]
        tasks:
          - {{name: ping, kind: passing, targets: {{labels: {{fleet: a}}}}, schedule: {{every: 1h}}}}
    """)
    engine = engine_with(Kind("passing", NoConfig, Passing, "always ok"), store, plan, clock)
    engine.reload()

    async def go() -> None:
        engine.start()
        await until(lambda: engine.metrics.registry.get_sample_value("maintd_runs_total", _OK) == 40, "ran")
        await engine.stop(0)  # at once: the results are queued, not stored yet

    run(go())
    assert finished(engine) == 40


_OK = {"kind": "passing", "status": "ok", "state": "finished"}
