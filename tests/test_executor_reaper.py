"""The reaper's decision and sweep, with the fake clock on a real PostgreSQL.

A run the scheduler claimed and sent to Celery, whose message nobody worked, is reaped once its
task's timeout + the grace have passed: interrupted (stop reason ``lost``), its schedule row
freed, a retry armed when the task's policy retries ``unknown``, one ``run.interrupted`` event;
never twice. Runs of this process's own runner and of a worker still beating are left alone. A
sweep of a process that lost the lease writes nothing. A sweep that reaps raises MaintdRunsLost,
which later losses update and a quiet period resolves. (tests/test_executor_faults.py: the real
processes, with a message deleted from Redis.)
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, text, update

from maintd.clock import FakeClock
from maintd.engine import Engine
from maintd.executor import reaper as reaper_module
from maintd.executor.alerting import QUIET
from maintd.executor.reaper import BEAT_STALE, PATIENCE, Reaper, Running, Seen, WorkerBeat, _reap, is_lost
from maintd.executor.worker import WorkerRuntime
from maintd.lease import TABLE, Lease, LeaseLost
from maintd.metrics import Metrics
from maintd.registry import Registry
from maintd.scheduler.orders import RunOrder
from maintd.store.db import Store
from maintd.store.models import AlertRow, EventRow, IncidentRow, RunRow, ScheduleRow
from tests.conftest import T0, run

TIMEOUT = timedelta(seconds=30)
GRACE = timedelta(seconds=60)
PLAN = """
    targets:
      - {name: local, kind: host}
    tasks:
      - name: quick
        kind: command
        targets: [local]
        schedule: {every: 1h}
        timeout: 30s
        params: {argv: ["true"]}
      - name: retried
        kind: command
        targets: [local]
        schedule: {every: 1h}
        timeout: 30s
        retries: {attempts: 3, backoff: 10s}
        params: {argv: ["true"]}
"""


@pytest.fixture
def engine(pg_store: Store, write_plan: Callable[..., Path], make_engine: Callable[..., Engine]) -> Engine:
    engine = make_engine(pg_store, write_plan(PLAN))
    assert engine.reload().ok
    return engine


@pytest.fixture
def pokes() -> list[datetime]:
    """The reaper's on_alert calls (the engine's poke in maintd serve), at the fake clock's time."""
    return []


@pytest.fixture
def reaper(engine: Engine, clock: FakeClock, pokes: list[datetime]) -> Reaper:
    return Reaper(
        store=engine.store,
        clock=clock,
        owner=engine.instance,
        loaded=lambda: engine.loaded,
        interval=timedelta(seconds=5),
        grace=GRACE,
        metrics=Metrics(),
        queue="q-test",
        on_alert=lambda: pokes.append(clock.now()),
    )


def lost_alerts(store: Store) -> list[AlertRow]:
    with store.read() as s:
        rows = s.scalars(select(AlertRow).order_by(AlertRow.id))
        return [a for a in rows if a.labels.get("alertname") == "MaintdRunsLost"]


def incidents(store: Store) -> list[IncidentRow]:
    with store.read() as s:
        return list(s.scalars(select(IncidentRow)))


def claim(engine: Engine, clock: FakeClock) -> dict[str, RunOrder]:
    """Claim what is due (as the scheduler does before sending it to Celery); by task."""
    orders, _ = engine.tick(clock.now())
    return {o.task.name: o for o in orders}


def run_row(store: Store, run_id: str) -> RunRow:
    with store.read() as s:
        row = s.get(RunRow, run_id)
        assert row is not None
        return row


def schedule(store: Store, task: str) -> ScheduleRow:
    with store.read() as s:
        row = s.scalar(select(ScheduleRow).where(ScheduleRow.task == task))
        assert row is not None
        return row


def lost_events(store: Store) -> list[EventRow]:
    with store.read() as s:
        rows = s.scalars(select(EventRow).where(EventRow.kind == "run.interrupted").order_by(EventRow.id))
        return [e for e in rows if e.payload.get("reason") == "lost"]


def test_the_decision() -> None:
    deadline = T0 + TIMEOUT + GRACE
    nothing = Seen(local=set(), live=set(), sender="scheduler-1", queued=False)

    def lost(run: Running, now: datetime, seen: Seen = nothing) -> bool:
        return is_lost(run, now=now, timeout=TIMEOUT, grace=GRACE, seen=seen)

    taken = Running("r1", "t", "local", "worker-a", 1, "schedule", T0)
    assert not lost(taken, deadline - timedelta(seconds=1))
    assert lost(taken, deadline)
    later = T0 + timedelta(days=1)
    assert not lost(taken, later, replace(nothing, live={"worker-a"}))  # its worker beats
    assert not lost(taken, later, replace(nothing, local={"r1"}))  # this process runs it
    # Never taken while messages wait in the queue: maybe behind them, PATIENCE more.
    untaken = replace(taken, owner="scheduler-1")
    backlog = replace(nothing, queued=True)
    assert lost(untaken, deadline)
    assert not lost(untaken, deadline + PATIENCE - timedelta(seconds=1), backlog)
    assert lost(untaken, deadline + PATIENCE, backlog)
    assert lost(taken, deadline, backlog)  # a dead worker's run is not in the queue


def test_a_run_nobody_worked_is_reaped_once_after_its_timeout_and_grace(
    engine: Engine, reaper: Reaper, clock: FakeClock
) -> None:
    store = engine.store
    orders = claim(engine, clock)
    quick, retried = orders["quick"], orders["retried"]
    due_before = schedule(store, "quick").due_at

    clock.advance(TIMEOUT + GRACE - timedelta(seconds=1))
    assert reaper.sweep(clock.now(), set()) == []
    assert run_row(store, quick.run_id).state == "running"

    clock.advance(timedelta(seconds=1))
    assert sorted(reaper.sweep(clock.now(), set())) == sorted([quick.run_id, retried.run_id])
    row = run_row(store, quick.run_id)
    assert (row.state, row.status, row.stop_reason) == ("interrupted", "unknown", "lost")
    assert row.finished_at == clock.now()
    # No retry policy: the row is free and the next scheduled run proceeds at its time.
    free = schedule(store, "quick")
    assert free.running_run_id is None and free.retry_at is None and free.due_at == due_before
    assert free.last_status is None and free.fail_streak == 0  # a lost run is no check result
    # The task retries `unknown`: attempt 2 is armed after its backoff, then claimed as a retry.
    armed = schedule(store, "retried")
    assert armed.running_run_id is None
    assert (armed.retry_at, armed.retry_attempt, armed.retry_trigger) == (
        clock.now() + timedelta(seconds=10),
        2,
        "retry",
    )
    events = lost_events(store)
    assert sorted(e.payload["run_id"] for e in events) == sorted([quick.run_id, retried.run_id])
    assert {e.actor for e in events} == {"reaper"}

    clock.advance(timedelta(seconds=5))
    assert reaper.sweep(clock.now(), set()) == []  # never twice
    assert len(lost_events(store)) == 2
    assert reaper.metrics is not None
    assert reaper.metrics.registry.get_sample_value("maintd_runs_lost_total") == 2

    clock.advance(timedelta(seconds=5))
    again = claim(engine, clock)
    assert list(again) == ["retried"]
    assert (again["retried"].attempt, again["retried"].trigger.value) == (2, "retry")


def test_more_lost_runs_than_a_batch_are_reaped_in_several_transactions(
    engine: Engine, reaper: Reaper, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(reaper_module, "BATCH", 1)
    orders = claim(engine, clock)
    clock.advance(TIMEOUT + GRACE)
    assert sorted(reaper.sweep(clock.now(), set())) == sorted(o.run_id for o in orders.values())
    assert sorted(e.payload["run_id"] for e in lost_events(engine.store)) == sorted(
        o.run_id for o in orders.values()
    )


def test_runs_of_this_runner_and_of_a_beating_worker_are_left_alone(
    engine: Engine, reaper: Reaper, clock: FakeClock
) -> None:
    store = engine.store
    orders = claim(engine, clock)
    quick, retried = orders["quick"], orders["retried"]
    worker = f"worker-{uuid.uuid4().hex[:6]}"
    beat = WorkerBeat(store, clock, worker)
    with store.write() as s:  # the worker took the retried run (maintd.executor.worker._take)
        s.execute(update(RunRow).where(RunRow.id == retried.run_id).values(owner=worker))

    clock.advance(TIMEOUT + GRACE + timedelta(minutes=5))
    beat.beat()
    assert reaper.sweep(clock.now(), {quick.run_id}) == []  # quick: in this process's runner

    clock.advance(BEAT_STALE)  # the worker stopped beating: it died with the run
    assert reaper.sweep(clock.now(), {quick.run_id}) == [retried.run_id]
    (event,) = lost_events(store)
    assert event.payload["owner"] == worker


def test_a_run_taken_or_recorded_after_the_sweep_read_it_is_not_reaped(
    engine: Engine, clock: FakeClock
) -> None:
    """The conditional update: the run must still be running, with the owner the sweep read."""
    store = engine.store
    orders = claim(engine, clock)
    clock.advance(TIMEOUT + GRACE)
    quick, retried = orders["quick"], orders["retried"]
    seen = {  # what a sweep read, before a worker took one run and recorded the other
        o.run_id: Running(o.run_id, o.task.name, "local", engine.instance, 1, "schedule", T0)
        for o in (quick, retried)
    }
    with store.write() as s:
        s.execute(update(RunRow).where(RunRow.id == quick.run_id).values(owner="worker-fast"))
        s.execute(update(RunRow).where(RunRow.id == retried.run_id).values(state="finished", status="ok"))
    tasks = {o.task.name: o.task for o in (quick, retried)}
    with store.write() as s:
        assert _reap(s, list(seen.values()), tasks, clock.now()) == []
    assert run_row(store, quick.run_id).state == "running"
    assert run_row(store, retried.run_id).state == "finished"
    assert schedule(store, "quick").running_run_id == quick.run_id
    assert lost_events(store) == []


def test_a_sweep_after_the_lease_is_lost_writes_nothing(
    engine: Engine, reaper: Reaper, clock: FakeClock
) -> None:
    store = engine.store
    orders = claim(engine, clock)
    clock.advance(TIMEOUT + GRACE)
    name = f"test-{uuid.uuid4().hex[:8]}"
    a = Lease(store.url, holder="a", ttl=600, name=name)
    b = Lease(store.url, holder="b", ttl=600, name=name)
    try:
        assert a.try_acquire()
        with store.write() as s:  # a's lease connection is cut; b takes over; a does not know yet
            s.execute(
                text(f"SELECT pg_terminate_backend(holder_pid) FROM {TABLE} WHERE name = :n"), {"n": name}
            )
        deadline = time.monotonic() + 10
        while not b.try_acquire():  # until PostgreSQL has let a's connection go
            assert time.monotonic() < deadline, "b never took the lease over"
            time.sleep(0.02)
        assert a.held()
        with pytest.raises(LeaseLost):
            a.call(reaper.sweep, clock.now(), set())
        assert run_row(store, orders["quick"].run_id).state == "running"
        assert lost_events(store) == []
        assert lost_alerts(store) == [] and incidents(store) == []
    finally:
        a.stop(release=False)
        b.stop(release=False)
        with store.write() as s:
            s.execute(text(f"DELETE FROM {TABLE} WHERE name = :n"), {"n": name})


def test_a_late_result_of_a_reaped_run_is_noted_and_not_recorded(
    engine: Engine, reaper: Reaper, clock: FakeClock, registry: Registry
) -> None:
    """A worker took the run, stopped beating (paused, cut off), and came back with its result."""
    store = engine.store
    quick = claim(engine, clock)["quick"]
    runtime = WorkerRuntime(store=store, registry=registry, clock=clock, owner="worker-late", children=None)
    try:
        assert runtime._take([quick]) == {quick.run_id: engine.instance}
        WorkerBeat(store, clock, "worker-late").beat()
        clock.advance(TIMEOUT + GRACE)
        assert quick.run_id in reaper.sweep(clock.now(), set())

        run(runtime.runner.run_all([quick]))  # the worker's result, after the reaping
    finally:
        runtime.close()
    row = run_row(store, quick.run_id)
    assert (row.state, row.status, row.stop_reason) == ("interrupted", "unknown", "lost")
    assert schedule(store, "quick").last_run_id is None  # counted once: as lost
    with store.read() as s:
        late = list(s.scalars(select(EventRow).where(EventRow.kind == "run.late")))
        changed = list(s.scalars(select(EventRow).where(EventRow.kind == "task.status")))
    assert [(e.payload["run_id"], e.payload["status"], e.payload["worker"]) for e in late] == [
        (quick.run_id, "ok", "worker-late")
    ]
    assert changed == []


def test_a_scheduler_taking_over_leaves_the_runs_of_beating_workers_to_them(
    engine: Engine, clock: FakeClock
) -> None:
    """Recovery at takeover: the dead holder's runs are owed again, a live worker's are not
    (re-running them would run an action twice while the worker still runs it)."""
    store = engine.store
    orders = claim(engine, clock)
    quick, retried = orders["quick"], orders["retried"]
    with store.write() as s:
        s.execute(update(RunRow).where(RunRow.id == retried.run_id).values(owner="worker-alive"))
    WorkerBeat(store, clock, "worker-alive").beat()
    clock.advance(timedelta(seconds=5))

    assert engine.recover() == [quick.run_id]
    assert run_row(store, quick.run_id).state == "interrupted"
    assert run_row(store, retried.run_id).state == "running"
    assert schedule(store, "retried").running_run_id == retried.run_id


@pytest.fixture(autouse=True)
def _no_beats_left(pg_store: Store) -> Iterator[None]:
    yield
    with pg_store.write() as s:
        s.execute(text("DELETE FROM heartbeats WHERE component LIKE 'worker:%'"))


def test_lost_runs_raise_one_alert_that_later_losses_update_and_a_quiet_period_resolves(
    engine: Engine, reaper: Reaper, clock: FakeClock, pokes: list[datetime]
) -> None:
    store = engine.store
    orders = claim(engine, clock)
    clock.advance(TIMEOUT + GRACE)
    first = clock.now()
    assert len(reaper.sweep(first, set())) == 2
    (alert,) = lost_alerts(store)
    assert alert.labels == {"alertname": "MaintdRunsLost", "component": "executor", "queue": "q-test"}
    assert (alert.status, alert.severity, alert.source) == ("firing", "warning", "native")
    assert alert.summary.startswith("2 run(s) sent to workers on queue q-test lost since")
    assert alert.summary.endswith("tasks: quick, retried")
    assert alert.annotations["lost_runs"] == "2" and alert.annotations["tasks"] == "quick, retried"
    assert sorted(alert.annotations["runs"].split(", ")) == sorted(o.run_id for o in orders.values())
    assert "persistence" in alert.annotations["action"]
    (incident,) = incidents(store)
    assert pokes == [first]

    # The retry of `retried` is claimed and lost too, a few sweeps later: the same alert, updated.
    clock.advance(timedelta(seconds=10))
    retry = claim(engine, clock)["retried"]
    clock.advance(TIMEOUT + GRACE)
    assert reaper.sweep(clock.now(), set()) == [retry.run_id]
    (alert,) = lost_alerts(store)
    assert alert.status == "firing" and alert.received == 2
    assert alert.annotations["lost_runs"] == "3" and alert.annotations["lost_last_sweep"] == "1"
    assert alert.annotations["runs"] == retry.run_id
    assert alert.summary.startswith("3 run(s)") and alert.summary.endswith("tasks: quick, retried")
    assert [i.id for i in incidents(store)] == [incident.id]  # no second incident
    last_loss = clock.now()

    clock.advance(QUIET - timedelta(seconds=1))
    assert reaper.sweep(clock.now(), set()) == []
    assert lost_alerts(store)[0].status == "firing"  # quiet, but not for long enough
    clock.advance(timedelta(seconds=1))
    assert reaper.sweep(clock.now(), set()) == []
    (alert,) = lost_alerts(store)
    assert alert.status == "resolved" and alert.ends_at == last_loss + QUIET
    assert len(pokes) == 3
    clock.advance(timedelta(seconds=5))
    assert reaper.sweep(clock.now(), set()) == []
    assert len(pokes) == 3  # resolved once


def test_a_new_holder_resolves_the_alert_an_earlier_holder_raised(
    engine: Engine, reaper: Reaper, clock: FakeClock
) -> None:
    """The alert's state is in the store: a reaper that never saw it firing still resolves it."""
    store = engine.store
    claim(engine, clock)
    clock.advance(TIMEOUT + GRACE)
    reaper.sweep(clock.now(), set())
    successor = Reaper(
        store=store,
        clock=clock,
        owner="scheduler-2",
        loaded=lambda: engine.loaded,
        interval=timedelta(seconds=5),
        grace=GRACE,
        queue="q-test",
    )
    clock.advance(timedelta(seconds=5))
    successor.sweep(clock.now(), set())
    assert lost_alerts(store)[0].status == "firing"
    clock.advance(QUIET)
    successor.sweep(clock.now(), set())
    assert lost_alerts(store)[0].status == "resolved"
