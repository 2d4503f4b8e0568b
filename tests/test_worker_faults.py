"""Fault tests of the Celery executor: real ``maintd serve --role scheduler --executor celery`` and
``maintd worker`` processes on a real PostgreSQL and the machine's real Redis (a db number and a
queue of these tests' own).

A scheduler and one worker run checks; each run is recorded once, by the worker. The two
checks are due together, so they travel in one message (a batch). SIGKILL the worker in the
middle of the slow run (a command that blocks until a file goes away), with the quick run of the
same message already recorded; start another: the broker redelivers the batch once the
visibility timeout has passed, the new worker takes only the slow run (and kills the dead
worker's command), the quick one is left as it was, and every run is recorded exactly once.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from sqlalchemy import select, text

from maintd.lease import SCHEDULER, TABLE
from maintd.store.db import Store
from maintd.store.models import RunRow
from tests.harness import Harness, Server

pytestmark = pytest.mark.slow
REDIS_DB = 15  # the machine's Redis: a db number of these tests' own
VISIBILITY = 2  # seconds before Redis gives a dead worker's run to another


@pytest.fixture
def world(pg_store: Store, tmp_path: Path) -> Iterator[Harness]:
    _forget_the_lease(pg_store)
    harness = Harness(pg_store, tmp_path)
    queue = f"maintd-test-{uuid.uuid4().hex[:8]}"
    harness.env.update(
        MAINTD_EXECUTOR="celery",
        MAINTD_BROKER_URL=f"redis://127.0.0.1:6379/{REDIS_DB}",
        MAINTD_QUEUE=queue,
        MAINTD_BROKER_VISIBILITY=str(VISIBILITY),
    )
    client = redis.Redis(host="127.0.0.1", port=6379, db=REDIS_DB)
    try:
        client.ping()
    except redis.RedisError as exc:
        pytest.fail(f"these tests need the Redis on 127.0.0.1:6379: {exc}")
    try:
        yield harness
    finally:
        harness.cleanup()
        client.delete(queue, *client.scan_iter(f"_kombu.binding*.{queue}"))  # and Celery's bindings
        client.close()
        _forget_the_lease(pg_store)


def _forget_the_lease(store: Store) -> None:
    with store.write() as s:
        if s.scalar(text("SELECT to_regclass(:t) IS NOT NULL"), {"t": TABLE}):
            s.execute(text(f"DELETE FROM {TABLE} WHERE name = :n"), {"n": SCHEDULER})


def start_worker(h: Harness, concurrency: int = 1) -> Server:
    stderr_path = h.tmp / f"worker-{len(h.servers)}.stderr"
    with open(stderr_path, "wb") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "maintd", "worker", "--concurrency", str(concurrency)],
            env=h.env,
            stdin=subprocess.DEVNULL,
            stdout=err,
            stderr=err,
            start_new_session=True,
        )
    server = Server(proc, 0, stderr_path)
    h.servers.append(server)
    return server


def owner_pid(run: RunRow) -> int:
    return int(run.owner.split(":")[1])


def test_a_worker_killed_mid_run_is_replaced_and_the_run_recorded_once(world: Harness) -> None:
    h = world
    h.write_plan(
        f"""
        targets:
          - {{name: local, kind: host}}
        tasks:
          - name: quick
            kind: command
            targets: [local]
            schedule: {{every: 1h}}
            params: {{argv: {h.command("quick")}}}
          - name: slow
            kind: command
            targets: [local]
            schedule: {{every: 1h}}
            params: {{argv: {h.command("slow")}}}
        """
    )
    h.hold("slow")
    scheduler = h.serve("--role", "scheduler")
    first = start_worker(h, concurrency=2)  # threads: the quick check does not wait behind the slow one

    # The worker runs both; the quick one is recorded once, with the worker as its owner.
    (quick,) = h.wait_for("the quick check to be recorded", lambda: h.finished("quick", 1), first)
    assert (quick.state, quick.status) == ("finished", "ok")
    assert owner_pid(quick) == first.proc.pid
    h.wait_for("the slow check to start", lambda: h.started("slow"), first)
    (slow,) = [r for r in h.runs() if r.task == "slow"]
    assert slow.state == "running" and owner_pid(slow) == first.proc.pid

    os.killpg(first.proc.pid, signal.SIGKILL)
    first.wait_exit(10)
    second = start_worker(h)
    h.wait_for("the run redelivered to the new worker", lambda: len(h.started("slow")) == 2, second)
    h.release("slow")
    (done,) = h.wait_for("the slow run to be recorded", lambda: h.finished("slow", 1), second)

    assert done.id == slow.id
    assert (done.state, done.status, done.trigger) == ("finished", "ok", "schedule")
    assert owner_pid(done) == second.proc.pid
    assert [r.task for r in h.runs()].count("slow") == 1
    row = h.schedule("slow")
    assert row is not None and row.last_run_id == slow.id and row.running_run_id is None
    assert len([e for e in h.events("task.status") if e.payload["run_id"] == slow.id]) == 1
    assert scheduler.proc.poll() is None
    with h.store.read() as s:  # the quick check was not sent or run again meanwhile
        assert list(s.scalars(select(RunRow.id).where(RunRow.task == "quick"))) == [quick.id]
        again = s.get(RunRow, quick.id)
        assert again is not None and (again.finished_at, again.owner) == (quick.finished_at, quick.owner)
    # It came back in the redelivered batch, and the new worker left it alone.
    assert f"runs {quick.id} are finished or no longer claimed" in second.stderr()
    with contextlib.suppress(ProcessLookupError):
        os.killpg(second.proc.pid, signal.SIGTERM)
