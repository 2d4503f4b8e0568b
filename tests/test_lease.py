"""The scheduler lease (maintd.lease) against a real PostgreSQL: one holder, fast takeover from a
dead holder, expiry for a paused one, and the fence that stops a holder who lost it from writing.

In-process: two Lease objects are two processes' keepers (each on its own connection); the
keeper threads are not started, so each step happens when the test says.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from maintd.lease import TABLE, Lease, LeaseLost
from maintd.settings import Settings
from maintd.store.db import Store
from maintd.store.models import HeartbeatRow
from tests.harness import T0, Harness, cli

WAIT = 10.0


@pytest.fixture
def leases(pg_store: Store) -> Iterator[list[Lease]]:
    """The keepers a test makes (with _pair): stopped, and their rows removed, afterwards."""
    made: list[Lease] = []
    yield made
    for lease in made:
        lease.stop(release=False)
    with pg_store.write() as s:
        s.execute(text(f"DELETE FROM {TABLE} WHERE name = ANY(:n)"), {"n": [x.name for x in made]})


def _pair(store: Store, made: list[Lease], ttl: float) -> tuple[Lease, Lease]:
    """Two processes' keepers of one lease, named so that no other test shares it."""
    name = f"test-{uuid.uuid4().hex[:8]}"
    a = Lease(store.url, holder="a", ttl=ttl, name=name)
    b = Lease(store.url, holder="b", ttl=ttl, name=name)
    made.extend([a, b])
    return a, b


def _until(what: str, probe: Callable[[], bool]) -> None:
    deadline = time.monotonic() + WAIT
    while not probe():
        if time.monotonic() > deadline:
            pytest.fail(f"gave up after {WAIT}s waiting for {what}")
        time.sleep(0.02)


def _beat(store: Store, instance: str) -> None:
    """A write a scheduler tick makes (the heartbeat), to fence."""
    with store.write() as s:
        s.merge(HeartbeatRow(component="lease-test", instance=instance, beat_at=T0))


def _beat_by(store: Store) -> str | None:
    with store.read() as s:
        row = s.get(HeartbeatRow, "lease-test")
        return row.instance if row else None


def test_one_of_two_holds_the_lease_and_a_clean_release_hands_it_over(
    pg_store: Store, leases: list[Lease]
) -> None:
    a, b = _pair(pg_store, leases, ttl=60)
    assert a.try_acquire() and a.epoch == 1
    assert not b.try_acquire() and b.epoch is None
    assert a.held() and not b.held()
    a.renew()
    assert a.held() and not a.lost.is_set()

    a.stop(release=True)  # SIGTERM: the holder expires its own lease
    assert b.try_acquire() and b.epoch == 2  # the fencing token moved on


def test_a_dead_holders_closed_connection_frees_the_lease_without_waiting_for_its_expiry(
    pg_store: Store, leases: list[Lease]
) -> None:
    a, b = _pair(pg_store, leases, ttl=600)
    assert a.try_acquire()
    a.stop(release=False)  # as a SIGKILL: the connection closes, the row still says a until +10 min
    _until("b to take over from a's closed connection", b.try_acquire)
    assert b.epoch == 2


def test_a_silent_holder_loses_the_lease_after_its_timeout_and_its_renewal_says_so(
    pg_store: Store, leases: list[Lease]
) -> None:
    a, b = _pair(pg_store, leases, ttl=0.5)
    assert a.try_acquire()
    assert not b.try_acquire()  # not expired yet, and a's connection is alive
    _until("a's lease to expire and b to take it", b.try_acquire)  # a paused: no renewal
    assert not a.held()
    a.renew()  # a resumes
    assert a.lost.is_set() and "another process took it over" in a.reason
    with pytest.raises(LeaseLost):
        a.call(_beat, pg_store, "a")


def test_a_holder_that_lost_the_lease_cannot_write_even_before_it_notices(
    pg_store: Store, leases: list[Lease]
) -> None:
    a, b = _pair(pg_store, leases, ttl=600)
    assert a.try_acquire()
    a.call(_beat, pg_store, "a")
    assert _beat_by(pg_store) == "a"

    # a's lease connection is cut (a network partition); a itself does not know yet.
    with pg_store.write() as s:
        s.execute(
            text(f"SELECT pg_terminate_backend(holder_pid) FROM {TABLE} WHERE name = :n"), {"n": a.name}
        )
    _until("b to take over", b.try_acquire)
    assert a.held()  # a's own view: renewed recently
    with pytest.raises(LeaseLost, match="no longer held"):
        a.call(_beat, pg_store, "a-after-the-takeover")
    assert _beat_by(pg_store) == "a"  # the fenced write was rolled back
    assert a.lost.is_set() and not a.held()
    b.call(_beat, pg_store, "b")
    assert _beat_by(pg_store) == "b"


def test_a_takeover_waits_for_the_old_holders_open_transaction(pg_store: Store, leases: list[Lease]) -> None:
    """Every write the old holder commits, it commits before the takeover, never after."""
    # Two seconds of slack each side: a's transaction must begin before the expiry (at 4 s) and
    # commit before PostgreSQL's idle-in-transaction timeout (the TTL, from its start) ends it.
    a, b = _pair(pg_store, leases, ttl=4.0)
    assert a.try_acquire()
    acquired = time.monotonic()
    inside, finish = threading.Event(), threading.Event()

    def tick_across_the_expiry() -> None:
        with pg_store.write() as s:
            s.merge(HeartbeatRow(component="lease-test", instance="a", beat_at=T0))
            inside.set()
            finish.wait(WAIT)

    # The transaction begins shortly before the lease expires and is still open after.
    _until("2 s into a's lease", lambda: time.monotonic() - acquired > 2.0)
    worker = threading.Thread(target=a.call, args=(tick_across_the_expiry,))
    worker.start()
    assert inside.wait(WAIT)
    took: list[bool] = []
    taker = threading.Thread(target=lambda: took.append(_take_when_expired(b)))
    taker.start()
    # b finds the lease expired and waits on a's share lock; a commits; then b takes over.
    _until("b to be blocked by a's transaction", lambda: _waiting_on_lock(pg_store))
    assert took == []
    finish.set()
    worker.join(WAIT)
    taker.join(WAIT)
    assert took == [True] and b.epoch == 2
    assert _beat_by(pg_store) == "a"


def test_a_holder_paused_inside_a_transaction_is_cut_off_and_its_write_is_lost(
    pg_store: Store, leases: list[Lease]
) -> None:
    a, b = _pair(pg_store, leases, ttl=0.5)
    assert a.try_acquire()
    failed: list[BaseException] = []
    resume = threading.Event()

    def paused_tick() -> None:
        try:
            with pg_store.write() as s:
                s.merge(HeartbeatRow(component="lease-test", instance="a", beat_at=T0))
                resume.wait(WAIT)  # SIGSTOP: PostgreSQL ends the idle transaction after the lease timeout
        except Exception as exc:
            failed.append(exc)

    worker = threading.Thread(target=a.call, args=(paused_tick,))
    worker.start()
    _until("b to take over from the paused a", b.try_acquire)
    resume.set()
    worker.join(WAIT)
    assert failed and "idle-in-transaction timeout" in str(failed[0])
    assert _beat_by(pg_store) is None


def _take_when_expired(lease: Lease) -> bool:
    deadline = time.monotonic() + WAIT
    while not lease.try_acquire():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def _waiting_on_lock(store: Store) -> bool:
    with store.read() as s:
        query = "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE :q"
        return bool(s.scalar(text(query), {"q": f"%UPDATE {TABLE}%"}))


def test_settings_refuse_an_unknown_role_and_a_non_positive_timeout() -> None:
    with pytest.raises(ValueError, match="unknown role 'worker'"):
        Settings(database_url="sqlite://", role="worker")
    with pytest.raises(ValueError, match="positive"):
        Settings(database_url="sqlite://", lease_ttl=0)


def test_roles_other_than_all_are_refused_on_sqlite(sqlite_world: Harness, tmp_path: Path) -> None:
    h = sqlite_world
    h.write_plan("targets: []\ntasks: []\n")
    done = cli("serve", "--plan", str(h.plan_dir), "--role", "scheduler", env=h.env)
    assert done.returncode == 2
    assert "--role scheduler needs PostgreSQL" in done.stderr
    assert "use --role all" in done.stderr
