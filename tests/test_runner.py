"""The runner: limits, plugin failures, shutdown, dry runs, manual runs."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from pydantic import BaseModel
from sqlalchemy import select

from maintd.checks.base import Change, CheckResult, Kind, RunContext, Status
from maintd.engine import Engine
from maintd.registry import Registry
from maintd.scheduler.claims import claim_manual
from maintd.settings import Settings
from maintd.store.models import EventRow, RunRow, ScheduleRow
from tests.conftest import run
from tests.manual_runs import action_events, run_by_hand


class GateConfig(BaseModel):
    pass


@dataclass
class Gate:
    """A task kind the test holds open: records how many run at once, finishes when released."""

    release: asyncio.Event | None = None
    running: int = 0
    most: int = 0

    def kind(self) -> Kind:
        gate = self

        class GateCheck:
            def __init__(self, _config: GateConfig) -> None:
                pass

            async def run(self, ctx: RunContext) -> CheckResult:
                gate.running += 1
                gate.most = max(gate.most, gate.running)
                try:
                    assert gate.release is not None
                    await gate.release.wait()
                finally:
                    gate.running -= 1
                return CheckResult(Status.ok, "released")

        return Kind("gate", GateConfig, GateCheck, "held open by the test")


class Broken:
    def __init__(self, _config: GateConfig) -> None:
        pass

    async def run(self, ctx: RunContext) -> CheckResult:
        raise RuntimeError("bug in a plugin")


def registry_with(*kinds: Kind) -> Registry:
    registry = Registry.default()
    for kind in kinds:
        registry.register(kind)
    return registry


PLAN = """
    runner: {concurrency: %d, shutdown_grace: 100ms}
    targets: [%s]
    tasks:
      - {name: held, kind: %s, targets: {labels: {fleet: a}}, schedule: {every: 1h}, concurrency: %d}
"""


def fleet(n: int) -> str:
    return ", ".join(f"{{name: h{i}, kind: host, labels: {{fleet: a}}}}" for i in range(n))


def engine_for(store, plan_dir, clock, registry) -> Engine:  # type: ignore[no-untyped-def]
    return Engine(
        Settings(database_url=store.url, plan_path=plan_dir), store=store, registry=registry, clock=clock
    )


def test_no_more_runs_at_once_than_the_task_and_global_limits(sqlite_store, write_plan, clock):
    gate = Gate()
    for global_limit, task_limit, expected in [(3, 0, 3), (10, 2, 2)]:
        engine = engine_for(
            sqlite_store,
            write_plan(PLAN % (global_limit, fleet(6), "gate", task_limit)),
            clock,
            registry_with(gate.kind()),
        )
        engine.reload()

        async def go(engine: Engine = engine, expected: int = expected) -> None:
            gate.release = asyncio.Event()
            gate.most = 0
            orders, _ = engine.tick(clock.now())
            engine.runner.start()
            tasks = [engine.runner.submit(o) for o in orders]
            while gate.running < min(expected, len(orders)):
                await asyncio.sleep(0)
            for _ in range(20):  # give any over-limit run every chance to start
                await asyncio.sleep(0)
            gate.release.set()
            await asyncio.gather(*tasks)
            await engine.runner.stop(0)

        run(go())
        assert gate.most == expected
        clock.advance(3600)


def test_a_plugin_that_raises_records_an_unknown_run_and_the_runner_goes_on(sqlite_store, write_plan, clock):
    engine = engine_for(
        sqlite_store,
        write_plan(PLAN % (4, fleet(2), "broken", 0)),
        clock,
        registry_with(Kind("broken", GateConfig, Broken, "always raises")),
    )
    engine.reload()

    async def go() -> None:
        orders, _ = engine.tick(clock.now())
        await engine.runner.run_all(orders)
        await engine.runner.stop(0)

    run(go())
    with sqlite_store.read() as s:
        runs = s.scalars(select(RunRow)).all()
    assert [(r.status, r.stop_reason) for r in runs] == [("unknown", "error")] * 2
    assert all("bug in a plugin" in r.output for r in runs)


def test_shutdown_interrupts_runs_past_the_grace_period_and_owes_a_rerun(store, write_plan, clock):
    gate = Gate()
    engine = engine_for(store, write_plan(PLAN % (4, fleet(1), "gate", 0)), clock, registry_with(gate.kind()))
    engine.reload()

    async def go() -> None:
        gate.release = asyncio.Event()  # never released
        orders, _ = engine.tick(clock.now())
        engine.runner.start()
        for order in orders:
            engine.runner.submit(order)
        while gate.running < 1:
            await asyncio.sleep(0)
        await engine.stop(grace=0.05)

    run(go())
    with store.read() as s:
        (interrupted,) = s.scalars(select(RunRow)).all()
        row = s.scalar(select(ScheduleRow))
        kinds = list(s.scalars(select(EventRow.kind)))
    assert (interrupted.state, interrupted.stop_reason) == ("interrupted", "shutdown")
    assert row.running_run_id is None
    assert row.retry_trigger == "recovery" and row.due_at <= clock.now()
    assert "run.shutdown" in kinds and "engine.stopped" in kinds


def test_a_manual_run_is_audited_and_refused_while_the_task_runs_there(store, write_plan, clock, registry):
    plan = (PLAN % (4, fleet(1), "command", 0)).replace(
        "{every: 1h}", '{every: 1h}, params: {argv: ["true"]}'
    )
    engine = engine_for(store, write_plan(plan), clock, registry)
    engine.reload()
    loaded = engine.loaded
    assert loaded is not None
    task = loaded.plan.task("held")
    with store.write() as s:
        first = claim_manual(s, loaded, task, "h0", clock.now(), owner="test", dry_run=True, actor="user:ada")
        second = claim_manual(
            s, loaded, task, "h0", clock.now(), owner="test", dry_run=False, actor="user:ada"
        )
    assert first is not None and second is None

    async def go() -> None:
        assert first is not None
        await engine.runner.run_all([first])
        await engine.runner.stop(0)

    run(go())
    with store.read() as s:
        (done,) = s.scalars(select(RunRow)).all()
        requested = s.scalar(select(EventRow).where(EventRow.kind == "run.requested"))
        row = s.scalar(select(ScheduleRow))
    assert done.trigger == "manual" and done.dry_run and "would run" in done.output
    assert requested is not None and requested.actor == "user:ada" and requested.payload["dry_run"] is True
    assert row.last_status is None  # a dry run says nothing about the task's health


class Remembering:
    """A kind that reports what it saw of its own earlier runs."""

    def __init__(self, _config: GateConfig) -> None:
        pass

    async def run(self, ctx: RunContext) -> CheckResult:
        earlier = await ctx.history(2)
        return CheckResult(Status.ok, f"saw {len(earlier)}", {"seen": float(len(earlier))})


def test_a_check_sees_its_own_recent_runs_newest_first(store, write_plan, clock):
    engine = engine_for(
        store,
        write_plan(PLAN % (4, fleet(1), "remembering", 0)),
        clock,
        registry_with(Kind("remembering", GateConfig, Remembering, "reads its history")),
    )
    engine.reload()

    async def go() -> None:
        for _ in range(4):
            orders, _ = engine.tick(clock.now())
            await engine.runner.run_all(orders)
            clock.advance(3600)
        await engine.runner.stop(0)

    run(go())
    with store.read() as s:
        outputs = [r.output for r in s.scalars(select(RunRow).order_by(RunRow.started_at))]
    assert outputs == ["saw 0", "saw 1", "saw 2", "saw 2"]


def test_runs_still_queued_when_the_grace_period_ends_are_interrupted_unstarted(store, write_plan, clock):
    gate = Gate()
    engine = engine_for(store, write_plan(PLAN % (1, fleet(3), "gate", 0)), clock, registry_with(gate.kind()))
    engine.reload()

    async def go() -> None:
        gate.release = asyncio.Event()  # never released
        orders, _ = engine.tick(clock.now())
        engine.runner.start()
        for order in orders:
            engine.runner.submit(order)
        while gate.running < 1:
            await asyncio.sleep(0)
        assert engine.runner.in_flight == 3
        # The gauge counts the one running and the two queued, then none once they are interrupted.
        assert engine.metrics.registry.get_sample_value("maintd_runs_in_flight") == 3
        await engine.stop(grace=0.05)
        assert engine.metrics.registry.get_sample_value("maintd_runs_in_flight") == 0

    run(go())
    assert gate.most == 1  # the two queued behind the one slot never started
    with store.read() as s:
        runs = s.scalars(select(RunRow)).all()
        rows = s.scalars(select(ScheduleRow)).all()
    assert [(r.state, r.stop_reason) for r in runs] == [("interrupted", "shutdown")] * 3
    assert all(r.running_run_id is None and r.retry_trigger == "recovery" for r in rows)


class Tidy:
    """An action kind: reports the files it removed (or, in a dry run, would remove)."""

    def __init__(self, _config: object) -> None:
        pass

    async def run(self, ctx: RunContext) -> CheckResult:
        verb = "would remove" if ctx.dry_run else "removed"
        changes = [Change("delete", f"/tmp/{ctx.target.name}/{i}.log", {"bytes": 10 * i}) for i in range(3)]
        return CheckResult(Status.ok, f"{verb} 3 files", changes=changes)


TIDY = Kind(name="tidy", config=GateConfig, build=Tidy, summary="test action", changes=lambda _c: True)


def test_what_an_action_changed_is_one_audit_event_per_run_planned_in_a_dry_run(store, write_plan, clock):
    engine = engine_for(store, write_plan(PLAN % (4, fleet(1), "tidy", 0)), clock, registry_with(TIDY))
    assert engine.reload().ok
    for dry_run in (True, False):
        run_by_hand(engine, "held", "h0", dry_run=dry_run)
    audit = action_events(store)
    assert [(e.kind, e.subject, e.payload["dry_run"]) for e in audit] == [
        ("action.planned", "task:held/h0", True),
        ("action.applied", "task:held/h0", False),
    ]
    assert audit[1].payload["changes"][2] == {
        "action": "delete",
        "target": "/tmp/h0/2.log",
        "detail": {"bytes": 20},
    }
