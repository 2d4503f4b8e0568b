"""A lost Celery message, with real processes: ``maintd serve --role scheduler`` and ``maintd worker``
on a real PostgreSQL and the machine's real Redis, configured by the plan's ``runner.executor``
(the broker a secret reference resolved in each process's environment; no MAINTD_EXECUTOR or
MAINTD_BROKER_URL anywhere, so the worker takes the broker and queue from the stored plan).

The scheduler claims a run and sends it; the test deletes the message from the Redis queue (a
broker restarted without persistence). Once the task's timeout + the grace have passed on the
clock, the scheduler's reaper marks the run interrupted (lost), once, and the task's retry
policy runs attempt 2, which the worker records. Without the reaper the run stayed ``running``
and its schedule row claimed for ever.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import redis
from sqlalchemy import select, update

from maintd.executor.reaper import PATIENCE
from maintd.store.db import Store
from maintd.store.models import HeartbeatRow, RunRow
from tests.harness import Harness
from tests.test_worker_faults import _forget_the_lease, owner_pid, start_worker

pytestmark = pytest.mark.slow
REDIS_DB = 11  # the machine's Redis: a db number of these tests' own (13: redis-upkeep, bench)


@pytest.fixture
def world(pg_store: Store, tmp_path: Path) -> Iterator[tuple[Harness, redis.Redis, str]]:
    _forget_the_lease(pg_store)
    harness = Harness(pg_store, tmp_path)
    harness.env["EXECUTOR_TEST_BROKER"] = f"redis://127.0.0.1:6379/{REDIS_DB}"
    queue = f"maintd-test-{uuid.uuid4().hex[:8]}"
    client = redis.Redis(host="127.0.0.1", port=6379, db=REDIS_DB)
    try:
        client.ping()
    except redis.RedisError as exc:
        pytest.fail(f"these tests need the Redis on 127.0.0.1:6379: {exc}")
    try:
        yield harness, client, queue
    finally:
        harness.cleanup()
        for pattern in (f"{queue}*", f"_kombu.binding*.{queue}"):  # the queue and Celery's bindings
            for key in client.scan_iter(pattern):
                client.delete(key)
        client.close()
        _forget_the_lease(pg_store)
        with pg_store.write() as s:
            s.query(HeartbeatRow).filter(HeartbeatRow.component.startswith("worker:")).delete()


def celery_plan(queue: str) -> str:
    """The plan's head: the Celery executor on ``queue`` with a reaper sweeping every second."""
    return f"""
        runner:
          executor:
            kind: celery
            broker_url: env:EXECUTOR_TEST_BROKER
            queue: {queue}
            reaper_interval: 1s
            reaper_grace: 5s
        targets:
          - {{name: local, kind: host}}
        """


def test_a_run_whose_message_was_lost_is_reaped_once_and_retried_on_a_worker(
    world: tuple[Harness, redis.Redis, str],
) -> None:
    h, client, queue = world
    h.write_plan(
        celery_plan(queue)
        + """
        tasks:
          - name: probe
            kind: command
            targets: [local]
            schedule: {every: 1h}
            timeout: 10s
            retries: {attempts: 2, backoff: 30s}
            params: {argv: ["true"]}
        """
    )
    scheduler = h.serve("--role", "scheduler")
    (sent,) = h.wait_for(
        "the run to be claimed", lambda: [r for r in h.runs() if r.task == "probe"], scheduler
    )
    h.wait_for("its message in the Redis queue", lambda: client.llen(queue) == 1, scheduler)
    assert client.delete(queue) == 1  # lost: the broker restarted without persistence

    worker = start_worker(h)
    h.wait_for("the worker's heartbeat", lambda: _beating(h.store), worker)
    h.set_clock(h.now + timedelta(seconds=16))  # past the task's timeout (10s) + the grace (5s)
    h.wait_for("the run to be reaped", lambda: _run(h.store, sent.id).state == "interrupted", scheduler)
    lost = _run(h.store, sent.id)
    assert (lost.status, lost.stop_reason, lost.attempt) == ("unknown", "lost", 1)
    assert owner_pid(lost) == scheduler.proc.pid  # no worker ever took it
    row = h.schedule("probe")
    assert row is not None and row.running_run_id is None and row.retry_attempt == 2

    h.set_clock(h.now + timedelta(seconds=30))  # the retry's backoff
    lost_and_retried = h.wait_for("attempt 2 to be recorded", lambda: h.finished("probe", 2), worker)
    (retried,) = [r for r in lost_and_retried if r.id != sent.id]
    assert (retried.status, retried.trigger, retried.attempt) == ("ok", "retry", 2)
    assert owner_pid(retried) == worker.proc.pid
    assert sorted(r.id for r in h.runs()) == sorted([sent.id, retried.id])
    (reaped,) = [e for e in h.events("run.interrupted") if e.payload.get("reason") == "lost"]
    assert reaped.payload["run_id"] == sent.id and reaped.actor == "reaper"
    row = h.schedule("probe")
    assert row is not None and row.last_run_id == retried.id and row.running_run_id is None
    assert scheduler.proc.poll() is None and worker.proc.poll() is None


def test_a_run_still_waiting_in_the_queue_is_given_patience_before_it_counts_as_lost(
    world: tuple[Harness, redis.Redis, str],
) -> None:
    """A backlog is not a loss: while messages wait in the queue, a run never taken is reaped only
    PATIENCE after its deadline. A run taken by a worker that died is reaped at its deadline (it is
    not in the queue): the same sweep shows the reaper looked."""
    h, client, queue = world
    h.write_plan(
        celery_plan(queue)
        + """
        tasks:
          - name: waiting
            kind: command
            targets: [local]
            schedule: {every: 1d}
            timeout: 10s
            params: {argv: ["true"]}
          - name: taken
            kind: command
            targets: [local]
            schedule: {every: 1d}
            timeout: 10s
            params: {argv: ["true"]}
        """
    )
    scheduler = h.serve("--role", "scheduler")
    runs = h.wait_for(
        "both runs to be claimed", lambda: _runs_by_task(h) if len(h.runs()) == 2 else None, scheduler
    )
    h.wait_for("their message in the Redis queue", lambda: client.llen(queue) >= 1, scheduler)
    with h.store.write() as s:  # a worker took one and died: its heartbeat stopped at T0
        s.add(HeartbeatRow(component="worker:dead-worker", instance="dead-worker", beat_at=h.now))
        s.execute(update(RunRow).where(RunRow.id == runs["taken"].id).values(owner="dead-worker"))

    h.set_clock(h.now + timedelta(seconds=60))  # past both deadlines (10s + 5s) and the heartbeat's
    h.wait_for(
        "the dead worker's run to be reaped",
        lambda: _run(h.store, runs["taken"].id).state != "running",
        scheduler,
    )
    assert _run(h.store, runs["waiting"].id).state == "running"
    assert client.llen(queue) >= 1

    h.set_clock(h.now + PATIENCE)
    h.wait_for(
        "the waiting run to be reaped",
        lambda: _run(h.store, runs["waiting"].id).state != "running",
        scheduler,
    )
    for task in ("waiting", "taken"):
        row = _run(h.store, runs[task].id)
        assert (row.state, row.stop_reason) == ("interrupted", "lost")
    assert len([e for e in h.events("run.interrupted") if e.payload.get("reason") == "lost"]) == 2


def _runs_by_task(h: Harness) -> dict[str, RunRow]:
    return {r.task: r for r in h.runs()}


def _run(store: Store, run_id: str) -> RunRow:
    with store.read() as s:
        row = s.get(RunRow, run_id)
        assert row is not None
        return row


def _beating(store: Store) -> bool:
    with store.read() as s:
        return s.scalar(select(HeartbeatRow).where(HeartbeatRow.component.startswith("worker:"))) is not None
