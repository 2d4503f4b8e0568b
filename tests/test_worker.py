"""The Celery executor in one process: run messages are idempotent, a down broker falls back.

A worker runtime works a message only while its run is owed (the run row ``running``, the
schedule row pointing at it): a duplicate of a recorded run records nothing. A scheduler whose
broker refuses a run runs it itself and raises ``MaintdBrokerDown`` through the alert pipeline;
the first run the broker takes again resolves it. (tests/test_worker_faults.py: real processes.)
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import redis
from sqlalchemy import func, select

from maintd.clock import FakeClock
from maintd.engine import Engine
from maintd.executor.celery_app import make_app
from maintd.executor.dispatch import ALERTNAME, CeleryExecutor
from maintd.executor.messages import to_message
from maintd.executor.worker import WorkerRuntime
from maintd.registry import Registry
from maintd.scheduler.orders import RunOrder
from maintd.settings import Settings
from maintd.store.db import Store
from maintd.store.models import AlertRow, EventRow, RunRow, ScheduleRow
from tests.conftest import run
from tests.harness import free_port

REDIS_DB = 14  # the machine's Redis: a db number of these tests' own, and a queue per test
PLAN = """
    targets:
      - {name: local, kind: host}
    tasks:
      - name: quick
        kind: command
        targets: [local]
        schedule: {every: 1m}
        params: {argv: ["true"]}
"""


@pytest.fixture
def engine(pg_store: Store, write_plan: Callable[..., Path], make_engine: Callable[..., Engine]) -> Engine:
    engine = make_engine(pg_store, write_plan(PLAN))
    assert engine.reload().ok
    return engine


@pytest.fixture
def runtime(pg_store: Store, registry: Registry, clock: FakeClock) -> Iterator[WorkerRuntime]:
    worker = WorkerRuntime(store=pg_store, registry=registry, clock=clock, owner="w1", children=None)
    yield worker
    worker.close()


def claim(engine: Engine, clock: FakeClock) -> RunOrder:
    orders, _ = engine.tick(clock.now())
    (order,) = orders
    return order


def count(store: Store, model: type[RunRow] | type[EventRow], *where: object) -> int:
    with store.read() as s:
        return int(s.scalar(select(func.count()).select_from(model).where(*where)) or 0)  # type: ignore[arg-type]


def test_a_duplicate_message_records_nothing(
    engine: Engine, runtime: WorkerRuntime, clock: FakeClock
) -> None:
    order = claim(engine, clock)
    assert engine.loaded is not None
    message = to_message(order, engine.loaded.digest)
    assert runtime.handle(message) == "recorded"
    store = engine.store
    with store.read() as s:
        row = s.get(RunRow, order.run_id)
        assert row is not None
        first = (row.state, row.status, row.owner, row.finished_at)
        schedule = s.get(ScheduleRow, order.schedule_id)
        assert schedule is not None and schedule.running_run_id is None
    assert first[:3] == ("finished", "ok", "w1")
    events = count(store, EventRow)

    clock.advance(timedelta(seconds=5))  # a redelivery later: it must not touch the recorded run
    assert runtime.handle(message) == "skipped"
    with store.read() as s:
        row = s.get(RunRow, order.run_id)
        assert row is not None and (row.state, row.status, row.owner, row.finished_at) == first
    assert count(store, EventRow) == events
    assert count(store, RunRow) == 1


def test_a_message_for_a_run_the_row_no_longer_points_at_is_ignored(
    engine: Engine, runtime: WorkerRuntime, clock: FakeClock
) -> None:
    order = claim(engine, clock)
    assert engine.loaded is not None
    with engine.store.write() as s:  # recovered by a new scheduler meanwhile, and claimed again
        row = s.get(ScheduleRow, order.schedule_id)
        assert row is not None
        row.running_run_id = "another"
    assert runtime.handle(to_message(order, engine.loaded.digest)) == "skipped"
    with engine.store.read() as s:
        run_row = s.get(RunRow, order.run_id)
        assert run_row is not None and run_row.state == "running" and run_row.owner == engine.instance


def test_a_worker_that_lost_its_run_does_not_record_it(
    engine: Engine, runtime: WorkerRuntime, clock: FakeClock, pg_store: Store
) -> None:
    """Redelivered to another worker while this one still ran it (a visibility timeout too short)."""
    order = claim(engine, clock)
    assert runtime._take([order]) == {order.run_id: engine.instance}
    with pg_store.write() as s:
        row = s.get(RunRow, order.run_id)
        assert row is not None
        row.owner = "w2"
    run(runtime.runner.run_all([order]))  # would have recorded it
    with pg_store.read() as s:
        row = s.get(RunRow, order.run_id)
        assert row is not None and row.state == "running" and row.owner == "w2"


def _executor(engine: Engine, broker: str, queue: str) -> CeleryExecutor:
    settings = Settings(database_url=engine.store.url, executor="celery", broker_url=broker, queue=queue)
    return CeleryExecutor(
        app=make_app(settings),
        queue=queue,
        runner=engine.runner,
        store=engine.store,
        clock=engine.clock,
        loaded=lambda: engine.loaded,
    )


def _broker_alert(store: Store) -> str | None:
    with store.read() as s:
        return s.scalar(select(AlertRow.status).where(AlertRow.labels["alertname"].as_string() == ALERTNAME))


def test_broker_down_runs_fall_back_to_the_runner_and_alert(engine: Engine, clock: FakeClock) -> None:
    queue = f"maintd-test-{uuid.uuid4().hex[:8]}"
    down = _executor(engine, f"redis://127.0.0.1:{free_port()}/{REDIS_DB}", queue)  # nothing listens there
    order = claim(engine, clock)

    async def dispatch(executor: CeleryExecutor, order: RunOrder) -> None:
        executor.submit(order)
        await executor.aclose()
        await engine.runner.stop(5)

    run(dispatch(down, order))
    assert (down.sent, down.fell_back, down.broker_down) == (0, 1, True)
    with engine.store.read() as s:
        row = s.get(RunRow, order.run_id)
        assert row is not None and (row.state, row.status, row.owner) == ("finished", "ok", engine.instance)
    assert _broker_alert(engine.store) == "firing"

    # The broker is back: the next run goes to the queue, and the alert resolves.
    up = _executor(engine, f"redis://127.0.0.1:6379/{REDIS_DB}", queue)
    up.broker_down = True  # as this scheduler knew it
    clock.advance(timedelta(minutes=1))
    again = claim(engine, clock)
    client = redis.Redis(host="127.0.0.1", port=6379, db=REDIS_DB)
    try:
        run(dispatch(up, again))
        assert (up.sent, up.fell_back, up.broker_down) == (1, 0, False)
        assert client.llen(queue) == 1
        assert _broker_alert(engine.store) == "resolved"
        with engine.store.read() as s:
            row = s.get(RunRow, again.run_id)
            assert row is not None and row.state == "running"  # a worker's now
    finally:
        client.delete(queue, *client.scan_iter(f"_kombu.binding*.{queue}"))  # and Celery's bindings
        client.close()
