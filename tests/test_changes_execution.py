"""Executing changes against a real HTTP service on loopback: a change that breaks it is rolled back
by itself and the service is healthy again; a good change completes after its 5-minute watch;
a restart in the middle of the watch carries on from the timers. The fake clock moves through the
watch; the due steps run as the engine's worker would run them."""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from maintd import timers
from maintd.changes import orders, service
from maintd.changes.model import ChangeRequest
from maintd.changes.preview import plan_steps
from maintd.changes.worker import ChangeWorker
from maintd.engine import Engine
from maintd.store import events
from maintd.store.models import NotificationRow
from tests.changes_support import GOOD, ROB, TESS, Service, plan_text, run_with_worker, web_fixture  # noqa: F401
from tests.conftest import T0

MINUTE = timedelta(minutes=1)


@pytest.fixture
def engine(store, write_plan, make_engine, web: Service) -> Engine:  # type: ignore[no-untyped-def]
    engine = make_engine(store, write_plan(plan_text(web)))
    assert engine.reload().ok, engine.last_reload
    return engine


def approved(engine: Engine, web: Service, new: str, **fields: Any) -> int:
    """A configuration update by rob, approved by tess (its evidence: a passing run of the check)."""
    assert engine.loaded is not None
    plan = engine.loaded.plan

    async def evidence(worker: ChangeWorker) -> str:
        (health,) = await worker.executor.checks.run(engine.loaded, ["web-health"], actor="test")  # type: ignore[arg-type]
        assert health.status.value == "ok" and health.run_id
        return health.run_id

    run_id = run_with_worker(engine, evidence)
    values = {
        "type": "configuration-update",
        "title": "new config",
        "procedure": "swap-config",
        "params": {"new": new},
        "targets": ["web"],
        "evidence": {"test-suite": run_id},
        **fields,
    }
    with engine.store.write() as s:
        row = service.create(s, request=ChangeRequest.model_validate(values), who=ROB, plan=plan, now=T0)
        service.approve(s, change_id=row.id, who=TESS, settings=plan.changes, now=T0)
        orders.request_execution(s, change_id=row.id, who=ROB, settings=plan.changes, now=T0)
        return row.id


def state(engine: Engine, change_id: int) -> str:
    with engine.store.read() as s:
        return service.load(s, change_id).state


def timeline(engine: Engine, change_id: int) -> list[str]:
    with engine.store.read() as s:
        return [e.kind for e in events.query(s, subject=f"change:{change_id}", limit=1000)]


def steps_at(engine: Engine, worker: ChangeWorker, delta: timedelta) -> Any:
    engine.clock.advance(delta)
    return worker.run_due()


def test_a_change_that_breaks_the_service_is_rolled_back_by_itself(engine: Engine, web: Service) -> None:
    change_id = approved(engine, web, str(web.broken))

    async def go(worker: ChangeWorker) -> None:
        assert [s.name for s in await worker.run_due()] == ["execute.1"]
        assert state(engine, change_id) == "watching"
        assert not web.healthy()  # the change broke it
        assert await steps_at(engine, worker, timedelta(seconds=30)) == []  # nothing due before the round
        ran = await steps_at(engine, worker, timedelta(seconds=30))
        assert [s.name for s in ran] == ["watch.1.1", "rollback.1"]

    run_with_worker(engine, go)
    assert web.healthy()
    assert web.config.read_text() == GOOD
    assert state(engine, change_id) == "rolled_back"
    assert timeline(engine, change_id) == [
        "change.created",
        "change.pending_approval",
        "change.approval",
        "change.approved",
        "change.executing",
        "change.snapshot",
        "change.prechecked",
        "change.applied",
        "change.watching",
        "change.checked",
        "change.rolling_back",
        "change.rollback_applied",
        "change.rechecked",
        "change.rolled_back",
    ]
    with engine.store.read() as s:
        row = service.load(s, change_id)
        (rolling,) = events.query(s, subject=f"change:{change_id}", kind="change.rolling_back")
        (checked,) = events.query(s, subject=f"change:{change_id}", kind="change.checked")
        notices = s.scalars(
            select(NotificationRow).where(NotificationRow.subject == f"change:{change_id}")
        ).all()
        left = timers.pending(s, subject=f"change:{change_id}", kind="change")
    assert row.applied == [] and row.finished_at == T0 + MINUTE
    assert rolling.payload["reason"].startswith("web-health on web is critical")
    assert [r["status"] for r in checked.payload["results"]] == ["critical"]
    assert row.snapshot == ""  # cp prints nothing; the copy is the snapshot
    assert sorted((n.recipient, n.state) for n in notices) == [
        ("person:rob", "rolled_back"),
        ("person:tess", "rolled_back"),
    ]
    assert left == []


def test_a_good_change_completes_after_watching_five_rounds(engine: Engine, web: Service) -> None:
    change_id = approved(engine, web, str(web.good))

    async def go(worker: ChangeWorker) -> None:
        await worker.run_due()
        for minute in range(1, 6):
            (step,) = await steps_at(engine, worker, MINUTE)
            assert step.name == f"watch.1.{minute}"
        assert await steps_at(engine, worker, 10 * MINUTE) == []

    run_with_worker(engine, go)
    assert state(engine, change_id) == "completed"
    assert timeline(engine, change_id).count("change.checked") == 5
    assert timeline(engine, change_id)[-1] == "change.completed"
    assert web.healthy()


def test_a_restart_in_the_middle_of_the_watch_carries_on_from_the_timers(
    engine: Engine,
    web: Service,
    make_engine,
    write_plan,  # type: ignore[no-untyped-def]
) -> None:
    change_id = approved(engine, web, str(web.good))

    async def first(worker: ChangeWorker) -> None:
        await worker.run_due()
        await steps_at(engine, worker, MINUTE)
        await steps_at(engine, worker, MINUTE)

    run_with_worker(engine, first)
    with engine.store.read() as s:
        pending = timers.pending(s, subject=f"change:{change_id}", kind="change")
    assert [(t.step, t.due_at) for t in pending] == [("watch.1.3", T0 + 3 * MINUTE)]
    # A new process: another engine (another instance name) on the same database.
    again = make_engine(engine.store, write_plan(plan_text(web)))
    assert again.reload().ok
    assert again.instance != engine.instance
    web.config.write_text("mode = broken by someone else\n")

    async def second(worker: ChangeWorker) -> None:
        assert [s.name for s in await steps_at(again, worker, MINUTE)] == ["watch.1.3", "rollback.1"]

    run_with_worker(again, second)
    # The rollback put the config from before the change back: the one that served.
    assert state(engine, change_id) == "rolled_back"
    assert web.healthy()
    assert timeline(engine, change_id).count("change.checked") == 3


def test_a_pre_check_that_fails_refuses_the_change_and_changes_nothing(engine: Engine, web: Service) -> None:
    change_id = approved(engine, web, str(web.good))
    web.config.write_text("mode = down\n")

    async def go(worker: ChangeWorker) -> None:
        await worker.run_due()

    run_with_worker(engine, go)
    assert state(engine, change_id) == "approved"
    assert "change.applied" not in timeline(engine, change_id)
    assert web.config.read_text() == "mode = down\n"
    with engine.store.read() as s:
        row = service.load(s, change_id)
    assert row.outcome is not None and row.outcome.startswith("refused: the pre-check found web-health")


def test_a_failing_apply_rolls_back_what_it_touched(engine: Engine, web: Service) -> None:
    assert engine.loaded is not None
    plan = engine.loaded.plan
    values = {"type": "standard", "title": "t", "procedure": "swap-config", "params": {"new": "/nonexistent"}}
    with engine.store.write() as s:
        req = ChangeRequest.model_validate({**values, "targets": ["web", "web2"], "canary": ["web2"]})
        row = service.create(s, request=req, who=ROB, plan=plan, now=T0)
        orders.request_execution(s, change_id=row.id, who=ROB, settings=plan.changes, now=T0)
        change_id = row.id
        steps = plan_steps(row, plan)
    assert steps[2].startswith("apply (canary) on web2: cp /nonexistent ")
    assert steps[3].startswith("canary check: run web-health")

    async def go(worker: ChangeWorker) -> None:
        assert [s.name for s in await worker.run_due()] == ["execute.1", "rollback.1"]

    run_with_worker(engine, go)
    with engine.store.read() as s:
        (applied,) = events.query(s, subject=f"change:{change_id}", kind="change.applied")
        (undone,) = events.query(s, subject=f"change:{change_id}", kind="change.rollback_applied")
    assert (applied.payload["target"], applied.payload["canary"], applied.payload["ok"]) == (
        "web2",
        True,
        False,
    )
    assert "No such file or directory" in applied.payload["output"]
    assert (undone.payload["target"], undone.payload["ok"]) == ("web2", True)
    assert state(engine, change_id) == "rolled_back"
    assert web.healthy()


async def until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + 20
    while not condition():
        assert time.monotonic() < deadline, f"gave up waiting until {what}"
        await asyncio.sleep(0.01)


def test_the_engines_own_loop_applies_watches_and_rolls_back(engine: Engine, web: Service) -> None:
    change_id = approved(engine, web, str(web.broken))

    async def go() -> None:
        engine.start()
        engine.changes.wake()  # what the API does after asking for the execution
        await until(lambda: state(engine, change_id) == "watching", "the change is applied")
        assert not web.healthy()
        engine.clock.advance(MINUTE)
        await until(lambda: state(engine, change_id) == "rolled_back", "it is rolled back")
        await engine.stop(0)

    asyncio.run(go())
    assert web.healthy()
    assert timeline(engine, change_id)[-3:] == [
        "change.rollback_applied",
        "change.rechecked",
        "change.rolled_back",
    ]


def test_unknown_results_beyond_max_errors_roll_back_and_a_check_still_failing_after_is_failed(
    store,
    write_plan,
    make_engine,
    web: Service,
    tmp_path: Path,  # type: ignore[no-untyped-def]
) -> None:
    code = tmp_path / "exit-code"
    code.write_text("0")
    script = tmp_path / "exit.py"
    script.write_text(
        f"import sys\nprint('exit', open({str(code)!r}).read())\nsys.exit(int(open({str(code)!r}).read()))\n"
    )
    watch = "{window: 5m, interval: 1m, checks: [web-health, flaky], max_errors: 1}"
    write_plan(plan_text(web, f"    tolerant: {{procedures: [swap-config], watch: {watch}}}\n"))
    flaky = f"""
        tasks:
          - name: flaky
            kind: command
            targets: [web]
            schedule: {{every: 1h}}
            params: {{argv: ["{sys.executable}", "{script}"], read_only: true}}
    """
    engine = make_engine(store, write_plan(flaky, name="flaky.yaml"))
    assert engine.reload().ok, engine.last_reload
    assert engine.loaded is not None
    plan = engine.loaded.plan
    values = {"type": "tolerant", "title": "t", "procedure": "swap-config", "params": {"new": str(web.good)}}
    with engine.store.write() as s:
        row = service.create(
            s,
            request=ChangeRequest.model_validate({**values, "targets": ["web"]}),
            who=ROB,
            plan=plan,
            now=T0,
        )
        orders.request_execution(s, change_id=row.id, who=ROB, settings=plan.changes, now=T0)
        change_id = row.id

    async def go(worker: ChangeWorker) -> None:
        assert [s.name for s in await worker.run_due()] == ["execute.1"]
        code.write_text("3")  # unknown, the Nagios way
        assert [s.name for s in await steps_at(engine, worker, MINUTE)] == ["watch.1.1"]  # one is tolerated
        assert [s.name for s in await steps_at(engine, worker, MINUTE)] == ["watch.1.2", "rollback.1"]

    run_with_worker(engine, go)
    with engine.store.read() as s:
        row = service.load(s, change_id)
    assert row.state == "failed"
    assert row.outcome == (
        "2 unknown results in the watch, more than max_errors (1); "
        "after the rollback: flaky on web is unknown: exit 3"
    )
