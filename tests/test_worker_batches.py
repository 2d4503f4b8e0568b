"""Runs travel to Celery workers in batches: several runs a message, each still recorded once.

The scheduler's executor sends the runs one tick claims as a few messages (real Redis); a
worker runtime takes the runs of a message still owed, runs them at once and records each as
it finishes, so one that times out holds back none of the others; a redelivered batch records
only the runs nobody recorded. (tests/test_worker_faults.py: a batch redelivered after a
worker's SIGKILL, real processes.)
"""

from __future__ import annotations

import base64
import json
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from sqlalchemy import func, select

from maintd.clock import FakeClock
from maintd.engine import Engine
from maintd.executor import dispatch
from maintd.executor.celery_app import make_app
from maintd.executor.dispatch import CeleryExecutor
from maintd.executor.messages import to_batch
from maintd.executor.worker import WorkerRuntime
from maintd.registry import Registry
from maintd.scheduler.orders import RunOrder
from maintd.settings import Settings
from maintd.store.db import Store
from maintd.store.models import EventRow, RunRow
from tests.conftest import run

REDIS_DB = 14  # the machine's Redis: a db number of these tests' own, and a queue per test
DEADLINE = 20.0  # seconds: generous bound for polls on a loaded machine
PLAN = """
    targets:
      - {name: local, kind: host}
    tasks:
      - name: quick
        kind: command
        targets: [local]
        schedule: {every: 1m}
        params: {argv: ["true"]}
      - name: stuck
        kind: command
        targets: [local]
        schedule: {every: 1m}
        timeout: 4s  # the quick run must be recorded before it: seconds to spare on a loaded machine
        params: {argv: ["sleep", "60"]}
"""


@pytest.fixture
def runtime(pg_store: Store, registry: Registry, clock: FakeClock) -> Iterator[WorkerRuntime]:
    worker = WorkerRuntime(store=pg_store, registry=registry, clock=clock, owner="w1", children=None)
    yield worker
    worker.close()


def engine_for(
    plan: str, pg_store: Store, write_plan: Callable[..., Path], make_engine: Callable[..., Engine]
) -> Engine:
    engine = make_engine(pg_store, write_plan(plan))
    assert engine.reload().ok
    return engine


def claim_all(engine: Engine, clock: FakeClock) -> dict[str, RunOrder]:
    orders, _ = engine.tick(clock.now())
    return {o.task.name + "@" + o.target.name: o for o in orders}


def run_row(store: Store, run_id: str) -> RunRow:
    with store.read() as s:
        row = s.get(RunRow, run_id)
        assert row is not None
        s.expunge(row)
        return row


def poll(what: str, probe: Callable[[], bool]) -> None:
    event = threading.Event()
    for _ in range(int(DEADLINE / 0.02)):
        if probe():
            return
        event.wait(0.02)
    raise AssertionError(f"gave up waiting for {what}")


def test_a_run_that_times_out_does_not_hold_back_the_others_of_its_batch(
    pg_store: Store,
    write_plan: Callable[..., Path],
    make_engine: Callable[..., Engine],
    runtime: WorkerRuntime,
    clock: FakeClock,
) -> None:
    engine = engine_for(PLAN, pg_store, write_plan, make_engine)
    orders = claim_all(engine, clock)
    stuck, quick = orders["stuck@local"], orders["quick@local"]
    assert engine.loaded is not None
    message = to_batch([stuck, quick], engine.loaded.digest)  # the slow one first in the message
    outcome: list[str] = []
    worker = threading.Thread(target=lambda: outcome.append(runtime.handle(message)))
    worker.start()
    try:
        # The quick run is recorded while the stuck one still runs: not after the batch.
        poll("the quick run to be recorded", lambda: run_row(pg_store, quick.run_id).state == "finished")
        assert run_row(pg_store, stuck.run_id).state == "running"
    finally:
        worker.join(DEADLINE)
    assert outcome == ["recorded"]
    done = run_row(pg_store, quick.run_id)
    assert (done.status, done.stop_reason, done.owner) == ("ok", None, "w1")
    late = run_row(pg_store, stuck.run_id)
    assert (late.state, late.status, late.stop_reason, late.owner) == ("finished", "unknown", "timeout", "w1")
    assert late.finished_at is not None and done.finished_at is not None


def test_a_redelivered_batch_records_only_the_runs_nobody_recorded(
    pg_store: Store,
    write_plan: Callable[..., Path],
    make_engine: Callable[..., Engine],
    runtime: WorkerRuntime,
    clock: FakeClock,
) -> None:
    engine = engine_for(PLAN.replace('["sleep", "60"]', '["true"]'), pg_store, write_plan, make_engine)
    orders = claim_all(engine, clock)
    first, second = orders["quick@local"], orders["stuck@local"]
    assert engine.loaded is not None
    batch = to_batch([first, second], engine.loaded.digest)
    # The worker that took the batch first recorded one run, then died: the other is still owed.
    assert runtime.handle(to_batch([first], engine.loaded.digest)) == "recorded"
    recorded = run_row(pg_store, first.run_id)
    with pg_store.read() as s:
        last_event = s.scalar(select(func.max(EventRow.id))) or 0

    assert runtime.handle(batch) == "recorded"  # the redelivery: only the owed run is worked
    again = run_row(pg_store, first.run_id)
    assert (again.finished_at, again.owner, again.status) == (recorded.finished_at, "w1", "ok")
    owed = run_row(pg_store, second.run_id)
    assert (owed.state, owed.status, owed.owner) == ("finished", "ok", "w1")
    with pg_store.read() as s:  # one task.status event for the owed run, none again for the first
        new = s.scalars(select(EventRow).where(EventRow.id > last_event).order_by(EventRow.id)).all()
        assert [(e.kind, e.payload.get("run_id")) for e in new] == [("task.status", second.run_id)]
        assert s.scalar(select(func.count()).select_from(RunRow)) == 2
    assert runtime.handle(batch) == "skipped"  # and once both are recorded, nothing at all


def test_the_runs_of_a_tick_go_out_as_a_few_batches(
    pg_store: Store,
    write_plan: Callable[..., Path],
    make_engine: Callable[..., Engine],
    clock: FakeClock,
) -> None:
    n = 3 * dispatch.MIN_BATCH - 4  # two full messages and a short one
    targets = "".join(f"  - {{name: t{i}, kind: host, labels: {{b: x}}}}\n" for i in range(n))
    task = "{name: quick, kind: command, targets: {labels: {b: x}}, schedule: {every: 1m}, "
    task += 'params: {argv: ["true"]}}'
    plan = f"targets:\n{targets}tasks:\n  - {task}\n"
    engine = engine_for(plan, pg_store, write_plan, make_engine)
    queue = f"maintd-test-{uuid.uuid4().hex[:8]}"
    settings = Settings(
        database_url=pg_store.url,
        executor="celery",
        broker_url=f"redis://127.0.0.1:6379/{REDIS_DB}",
        queue=queue,
    )
    executor = CeleryExecutor(
        app=make_app(settings),
        queue=queue,
        runner=engine.runner,
        store=pg_store,
        clock=clock,
        loaded=lambda: engine.loaded,
    )
    orders = list(claim_all(engine, clock).values())
    assert len(orders) == n

    async def send() -> None:
        for order in orders:  # as the scheduler loop does: one submit a run, in one turn of the loop
            executor.submit(order)
        await executor.aclose()

    client = redis.Redis(host="127.0.0.1", port=6379, db=REDIS_DB)
    try:
        run(send())
        assert (executor.sent, executor.messages, executor.fell_back) == (n, 3, 0)
        messages = [_message(raw) for raw in client.lrange(queue, 0, -1)]
        assert sorted(len(m["runs"]) for m in messages) == [n - 2 * dispatch.MIN_BATCH] + 2 * [
            dispatch.MIN_BATCH
        ]
        assert engine.loaded is not None and {m["plan"] for m in messages} == {engine.loaded.digest}
        sent = [r["run_id"] for m in messages for r in m["runs"]]
        assert sorted(sent) == sorted(o.run_id for o in orders)  # each run in one message
    finally:
        client.delete(queue, f"_kombu.binding.{queue}", f"_kombu.binding_permanent.{queue}")
        client.close()


def _message(raw: bytes) -> dict[str, Any]:
    """The maintd message in a Celery message as kombu keeps it in Redis (JSON, body in base64)."""
    body = json.loads(base64.b64decode(json.loads(raw)["body"]))
    (message,) = body[0]  # (args, kwargs, embed): the task's one argument
    assert isinstance(message, dict)
    return message
