"""What a kind carries from one run of a task on a target to the next (``ctx.memo()``)."""

from __future__ import annotations

import logging
from typing import Literal

from pydantic import BaseModel
from sqlalchemy import select

from maintd.checks.base import MEMO_LIMIT, CheckResult, Kind, RunContext, Status
from maintd.scheduler.claims import claim_manual
from maintd.store.models import RunRow, ScheduleRow
from tests.conftest import run
from tests.test_runner import engine_for, registry_with


class CountingConfig(BaseModel):
    save: Literal["count", "nothing", "not-json", "huge"] = "count"


class Counting:
    """Counts its own runs in its memo; ``save`` makes it misbehave the ways a kind can."""

    def __init__(self, config: CountingConfig) -> None:
        self.save = config.save

    async def run(self, ctx: RunContext) -> CheckResult:
        seen = (await ctx.memo()).get("count", 0)
        memo: dict[str, object] | None = {
            "count": {"count": seen + 1},
            "nothing": None,
            "not-json": {"count": object()},
            "huge": {"count": seen + 1, "pad": "x" * MEMO_LIMIT},
        }[self.save]
        return CheckResult(Status.ok, f"seen {seen}", memo=memo)


COUNTING = Kind("counting", CountingConfig, Counting, "counts its runs in its memo")

PLAN = """
    targets: [{name: a, kind: host}, {name: b, kind: host}]
    tasks:
      - {name: counter, kind: counting, targets: [a, b], schedule: {every: 1h}, params: {save: %s}}
"""


def outputs(store, target: str) -> list[str]:  # type: ignore[no-untyped-def]
    with store.read() as s:
        rows = s.scalars(select(RunRow).where(RunRow.target == target).order_by(RunRow.started_at))
        return [r.output for r in rows]


def run_ticks(engine, clock, n: int) -> None:  # type: ignore[no-untyped-def]
    async def go() -> None:
        for _ in range(n):
            orders, _ = engine.tick(clock.now())
            await engine.runner.run_all(orders)
            clock.advance(3600)
        await engine.runner.stop(0)

    run(go())


def test_each_run_reads_what_the_previous_run_on_the_same_target_saved(store, write_plan, clock):
    engine = engine_for(store, write_plan(PLAN % "count"), clock, registry_with(COUNTING))
    assert engine.reload().ok
    run_ticks(engine, clock, 3)
    assert outputs(store, "a") == outputs(store, "b") == ["seen 0", "seen 1", "seen 2"]
    with store.read() as s:
        assert {r.target: r.memo for r in s.scalars(select(ScheduleRow))} == {
            "a": {"count": 3},
            "b": {"count": 3},
        }


def test_a_dry_run_neither_saves_nor_loses_the_memo(store, write_plan, clock):
    engine = engine_for(store, write_plan(PLAN % "count"), clock, registry_with(COUNTING))
    assert engine.reload().ok
    run_ticks(engine, clock, 1)
    loaded = engine.loaded
    assert loaded is not None
    task = loaded.plan.task("counter")
    for dry_run in (True, True, False):
        with store.write() as s:
            order = claim_manual(s, loaded, task, "a", clock.now(), owner="t", dry_run=dry_run, actor="u")
        assert order is not None

        async def go(order=order) -> None:  # type: ignore[no-untyped-def]
            await engine.runner.run_all([order])
            await engine.runner.stop(0)

        run(go())
    assert outputs(store, "a") == ["seen 0", "seen 1", "seen 1", "seen 1"]
    with store.read() as s:
        assert s.scalar(select(ScheduleRow.memo).where(ScheduleRow.target == "a")) == {"count": 2}


def test_a_run_that_saves_nothing_keeps_the_memo_before_it(store, write_plan, clock):
    registry = registry_with(COUNTING)
    engine = engine_for(store, write_plan(PLAN % "count"), clock, registry)
    assert engine.reload().ok
    run_ticks(engine, clock, 2)
    engine = engine_for(store, write_plan(PLAN % "nothing"), clock, registry)
    assert engine.reload().ok
    run_ticks(engine, clock, 2)
    assert outputs(store, "a") == ["seen 0", "seen 1", "seen 2", "seen 2"]


def test_a_memo_that_is_not_json_or_too_big_is_refused_and_the_run_still_recorded(
    sqlite_store, write_plan, clock, caplog
):
    registry = registry_with(COUNTING)
    engine = engine_for(sqlite_store, write_plan(PLAN % "count"), clock, registry)
    assert engine.reload().ok
    run_ticks(engine, clock, 1)
    for bad in ("not-json", "huge"):
        engine = engine_for(sqlite_store, write_plan(PLAN % bad), clock, registry)
        assert engine.reload().ok
        with caplog.at_level(logging.WARNING, logger="maintd.runner.recorder"):
            run_ticks(engine, clock, 1)
    assert outputs(sqlite_store, "a") == ["seen 0", "seen 1", "seen 1"]
    assert "memo is not JSON" in caplog.text and f"is over {MEMO_LIMIT}" in caplog.text
    with sqlite_store.read() as s:
        assert s.scalar(select(ScheduleRow.memo).where(ScheduleRow.target == "a")) == {"count": 1}
