"""Fault tests of the scale-out roles: real ``maintd serve`` processes on one real PostgreSQL.

Two ``--role scheduler`` processes: one holds the lease and ticks, the other waits. SIGKILL the
holder while runs and escalation steps are due: the standby takes over within the lease timeout,
and every due run and every escalation level happens exactly once. SIGSTOP the holder past the
lease timeout: the standby takes over; SIGCONT: the old holder does nothing and exits. An
``--role api`` process serves the API and takes alerts in, and never ticks; its alert wakes
the scheduler (NOTIFY), which pages at once.
"""

from __future__ import annotations

import collections
import re
import signal
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from functools import partial
from pathlib import Path

import pytest
from sqlalchemy import create_engine, func, select, text

from maintd.lease import SCHEDULER, TABLE
from maintd.store.db import Store, normalise_url
from maintd.store.models import HeartbeatRow, NotificationRow, RunRow
from tests.conftest import PG_ADMIN_URL
from tests.harness import T0, Harness, Server, cli, http_get
from tests.notify_support import Mailbox, mail_to, paged, paging_plan
from tests.processes import alive
from tests.test_paging import post_json

pytestmark = pytest.mark.slow
TTL = 2.0  # seconds: the lease timeout these tests run with
KILLED_TTL = 10.0  # ... and the one a SIGKILLed holder's test runs with
# Four servers and a migrating child start at once: five interpreters on two cores that the
# other three test workers share. 6-8 s here with both cores busy elsewhere; CI once took over 20.
STARTING_TOGETHER = 60.0


@pytest.fixture
def pg(pg_store: Store, tmp_path: Path) -> Iterator[Harness]:
    """A world on PostgreSQL (where the lease lives) with a short lease timeout."""
    _forget_the_lease(pg_store)
    harness = Harness(pg_store, tmp_path)
    harness.env["MAINTD_LEASE_TTL"] = str(TTL)
    try:
        yield harness
    finally:
        harness.cleanup()
        _forget_the_lease(pg_store)


def _forget_the_lease(store: Store) -> None:
    with store.write() as s:
        if s.scalar(text("SELECT to_regclass(:t) IS NOT NULL"), {"t": TABLE}):
            s.execute(text(f"DELETE FROM {TABLE} WHERE name = :n"), {"n": SCHEDULER})


def plan(h: Harness, box: Mailbox) -> str:
    return (
        paging_plan(box)
        + f"""
        targets:
          - {{name: local, kind: host}}
        tasks:
          - name: a
            kind: command
            targets: [local]
            schedule: {{every: 1m}}
            params: {{argv: {h.command("a")}}}
        """
    )


def lease_holder(h: Harness) -> tuple[str, int] | None:
    with h.store.read() as s:
        if not s.scalar(text("SELECT to_regclass(:t) IS NOT NULL"), {"t": TABLE}):
            return None
        row = s.execute(text(f"SELECT holder, epoch FROM {TABLE} WHERE name = :n"), {"n": SCHEDULER}).first()
    return (str(row[0]), int(row[1])) if row else None


def server_of(h: Harness, instance: str) -> Server:
    """The process an instance name (host:pid:suffix) belongs to."""
    pid = int(instance.split(":")[1])
    (server,) = [s for s in h.servers if s.proc.pid == pid]
    return server


def started_by(h: Harness) -> list[str]:
    return [e.payload["instance"] for e in h.events("engine.started")]


def run_owners(h: Harness) -> collections.Counter[str]:
    with h.store.read() as s:
        return collections.Counter(s.scalars(select(RunRow.owner)))


def heartbeat(h: Harness) -> str | None:
    with h.store.read() as s:
        row = s.get(HeartbeatRow, "scheduler")
        return row.instance if row else None


def token(h: Harness) -> str:
    made = cli("token", "create", "--name", "prometheus", "--role", "responder", env=h.env)
    assert made.returncode == 0, made.stderr
    return made.stdout.strip().splitlines()[-1]


def alert(api: Server, bearer: str) -> int:
    body = [
        {"labels": {"alertname": "AuthDown", "service": "auth", "target": "auth-1"}, "severity": "critical"}
    ]
    status, accepted = post_json(f"{api.url}/api/v1/alerts", body, bearer)
    assert status == 200
    return int(accepted["alerts"][0]["incident_id"])


def pages(h: Harness, incident_id: int) -> collections.Counter[tuple[str, str, str]]:
    """An incident's notification rows by (recipient, state, step): the log that pages once."""
    n = NotificationRow
    with h.store.read() as s:
        rows = s.execute(
            select(n.recipient, n.state, n.step, func.count())
            .where(n.incident_id == incident_id)
            .group_by(n.recipient, n.state, n.step)
        )
        return collections.Counter({(r, state, step): c for r, state, step, c in rows})


def two_schedulers(h: Harness) -> tuple[Server, Server]:
    """Start two schedulers, the second once the first holds the lease; (holder, standby)."""
    first = h.serve("--role", "scheduler")
    h.wait_for("the first scheduler to hold the lease", lambda: lease_holder(h), first)
    second = h.serve("--role", "scheduler")
    h.wait_ready(second)  # a standby is ready: the database, its plan, the holder's heartbeat
    holder = server_of(h, h.wait_for("a holder", lambda: lease_holder(h))[0])
    return holder, (second if holder is first else first)


# -- 1. one ticks; SIGKILL the holder ---------------------------------------------------------


def test_a_sigkilled_holder_is_replaced_within_the_lease_timeout_losing_and_doubling_nothing(
    pg: Harness, mailbox: Mailbox
) -> None:
    h = pg
    # A dead holder's lease is taken over on the standby's next poll (0.5 s), not at its expiry:
    # a long timeout here shows that with seconds to spare on a loaded machine.
    h.env["MAINTD_LEASE_TTL"] = str(KILLED_TTL)
    h.write_plan(plan(h, mailbox))
    bearer = token(h)
    api = h.serve("--role", "api")
    holder, standby = two_schedulers(h)
    h.wait_for("run 1 (due at T0) to finish", lambda: h.finished("a", 1), holder)

    # Only the holder ticks: it started the engine, beats, and ran run 1.
    instance, epoch = lease_holder(h) or ("", 0)
    assert started_by(h) == [instance]
    assert heartbeat(h) == instance
    assert run_owners(h) == {instance: 1}

    incident_id = alert(api, bearer)
    h.wait_for("level 1: the page to ann", lambda: paged(h.store, mailbox, incident_id, "ann"), holder)

    # Run 2 starts on the holder; then the holder is SIGKILLed while it runs.
    h.hold("a")
    h.set_clock(T0 + timedelta(minutes=1))
    h.wait_for("run 2's command to start", lambda: len(h.started("a")) == 2, holder)
    orphan = h.started("a")[1]
    holder.signal(signal.SIGKILL)
    killed = time.monotonic()
    assert holder.wait_exit(10) == -signal.SIGKILL
    # Now due: run 2's recovery, the missed regular times (misfire), escalation level 2.
    h.set_clock(T0 + timedelta(minutes=15, seconds=10))

    h.wait_for("the standby to take over", lambda: len(started_by(h)) == 2, standby)
    takeover = time.monotonic() - killed
    new_instance, new_epoch = lease_holder(h) or ("", 0)
    assert server_of(h, new_instance) is standby and new_epoch == epoch + 1
    assert takeover < KILLED_TTL / 2, f"takeover took {takeover:.2f}s"
    h.wait_for("the orphaned command of run 2 to be killed", lambda: not alive(orphan), standby)
    h.release("a")
    h.wait_for("level 2: the page to carol", lambda: paged(h.store, mailbox, incident_id, "carol"), standby)
    h.wait_for("the runs to settle", lambda: h.settled("a"), standby)
    assert h.counts("a") == {
        ("schedule", "finished", None): 1,  # run 1, by the old holder
        ("schedule", "interrupted", "crash"): 1,  # run 2, found running by the new holder
        ("recovery", "finished", None): 1,  # run 2 again, once
        ("misfire", "finished", None): 1,  # the regular times missed meanwhile, run_once
    }
    assert len(h.started("a")) == 4  # every claimed run ran its command once
    h.set_clock(T0 + timedelta(minutes=30, seconds=10))
    h.wait_for("level 3: the page to erin", lambda: mail_to(mailbox, "erin"), standby)
    # Each level of the incident paged once (the incident its missed deadline raised is another).
    assert pages(h, incident_id) == {
        ("person:ann", "triggered", "c0.l1"): 1,
        ("person:carol", "triggered", "c0.l2"): 1,
        ("person:erin", "triggered", "c0.l3"): 1,
    }
    about = [m for m in mailbox.messages if re.search(rf"#{incident_id}\b", m.subject)]
    assert sorted(r for m in about for r in m.recipients) == [
        "ann@example.test",
        "carol@example.test",
        "erin@example.test",
    ]
    assert heartbeat(h) == new_instance
    assert api.proc.poll() is None and standby.proc.poll() is None


def _notifications(h: Harness) -> list[NotificationRow]:
    with h.store.read() as s:
        return list(s.scalars(select(NotificationRow)))


# -- 2. SIGSTOP the holder past the timeout, SIGCONT it ----------------------------------------


def test_a_paused_holder_loses_the_lease_and_after_sigcont_runs_nothing_and_steps_down(
    pg: Harness, mailbox: Mailbox
) -> None:
    h = pg
    h.write_plan(plan(h, mailbox))
    old, standby = two_schedulers(h)
    h.wait_for("run 1 to finish", lambda: h.finished("a", 1), old)
    old_instance, epoch = lease_holder(h) or ("", 0)

    old.signal(signal.SIGSTOP)
    try:
        paused = time.monotonic()
        h.wait_for("the standby to take over", lambda: (lease_holder(h) or ("", 0))[1] == epoch + 1, standby)
        takeover = time.monotonic() - paused
        new_instance, _ = lease_holder(h) or ("", 0)
        assert server_of(h, new_instance) is standby
        assert takeover < TTL + 2.0, f"takeover took {takeover:.2f}s"
        # Due while the old holder is paused: run 2. The new holder runs it.
        h.set_clock(T0 + timedelta(minutes=1))
        h.wait_for("run 2 to finish", lambda: h.finished("a", 2), standby)
    finally:
        old.signal(signal.SIGCONT)

    # Resumed, the old holder finds the lease gone, ticks nothing and exits for its supervisor.
    assert old.wait_exit(10) == 2
    assert "lost the scheduler lease" in old.stderr()
    h.set_clock(T0 + timedelta(minutes=2))
    h.wait_for("run 3 by the new holder", lambda: h.finished("a", 3), standby)
    assert run_owners(h) == {old_instance: 1, new_instance: 2}
    assert h.counts("a") == {("schedule", "finished", None): 3}
    assert started_by(h) == [old_instance, new_instance]
    assert heartbeat(h) == new_instance


# -- 3. an API replica ---------------------------------------------------------------------------


def test_an_api_replica_serves_and_takes_alerts_in_but_never_ticks(pg: Harness, mailbox: Mailbox) -> None:
    h = pg
    h.write_plan(plan(h, mailbox))
    bearer = token(h)
    # The scheduler first: it stores the plan, whose escalation policies new incidents take.
    scheduler = h.serve("--role", "scheduler")
    h.wait_for("run 1 to finish", lambda: h.finished("a", 1), scheduler)
    instance, _ = lease_holder(h) or ("", 0)
    api = h.serve("--role", "api")
    h.wait_ready(api)

    incident_id = alert(api, bearer)
    h.wait_for("the page to ann", lambda: mail_to(mailbox, "ann"), scheduler)
    assert pages(h, incident_id) == {("person:ann", "triggered", "c0.l1"): 1}
    assert server_of(h, instance) is scheduler
    assert run_owners(h) == {instance: 1} and started_by(h) == [instance]
    # The scheduler has no API, only its health port.
    assert http_get(scheduler.url + "/readyz")[0] == 200
    assert http_get(scheduler.url + "/api/v1/tasks")[0] == 404

    # SIGHUP: the holder stores the changed plan (its reload is fenced like a tick).
    (loaded,) = h.events("plan.loaded")
    h.plan_file.write_text(h.plan_file.read_text().replace("every: 1m", "every: 2m"))
    scheduler.signal(signal.SIGHUP)
    h.wait_for("the holder to store the reloaded plan", lambda: len(h.events("plan.loaded")) == 2, scheduler)
    assert h.events("plan.loaded")[1].payload["digest"] != loaded.payload["digest"]

    # Without a scheduler, the replica goes on serving but schedules nothing and beats for nobody.
    scheduler.signal(signal.SIGKILL)
    assert scheduler.wait_exit(10) == -signal.SIGKILL
    h.set_clock(T0 + timedelta(minutes=3))  # runs 2-4 are due, the heartbeat goes stale

    def stale() -> bool:
        code, body = http_get(api.url + "/readyz")
        return code == 503 and str(body["checks"]["scheduler"]).startswith("last heartbeat")

    h.wait_for("the replica's /readyz to report the stale scheduler", stale, api)
    assert http_get(api.url + "/healthz")[0] == 200
    assert run_owners(h) == {instance: 1} and heartbeat(h) == instance and started_by(h) == [instance]
    assert (lease_holder(h) or ("", 0))[0] == instance


# -- 4. a replica's alert wakes the holder ------------------------------------------------------


def test_an_alert_through_a_replica_is_paged_at_once_by_the_scheduler_it_wakes(
    pg: Harness, mailbox: Mailbox
) -> None:
    """The file clock stands still: only the replica's NOTIFY can wake the scheduler to page."""
    h = pg
    h.write_plan(plan(h, mailbox))  # group_wait 0 (the default): the first page is due at once
    bearer = token(h)
    scheduler = h.serve("--role", "scheduler")
    h.wait_for("run 1 to finish", lambda: h.finished("a", 1), scheduler)
    api = h.serve("--role", "api")
    h.wait_ready(api)

    incident_id = alert(api, bearer)
    h.wait_for("the page to ann, without the clock moving", lambda: mail_to(mailbox, "ann"), scheduler)
    assert pages(h, incident_id) == {("person:ann", "triggered", "c0.l1"): 1}
    assert h.now == T0


# -- 5. a new database, every process starting at once ----------------------------------------


@pytest.fixture
def new_database(tmp_path: Path) -> Iterator[str]:
    """An empty PostgreSQL database (no schema yet), dropped afterwards."""
    admin = create_engine(normalise_url(PG_ADMIN_URL), isolation_level="AUTOCOMMIT")
    name = f"maintd_lease_{uuid.uuid4().hex[:10]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield normalise_url(PG_ADMIN_URL).rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _healthy(server: Server) -> bool:
    return http_get(server.url + "/healthz")[0] == 200


def _sessions(store: Store) -> str:
    """What each session on the test's database is doing: shows a start-up stuck on a lock."""
    with store.read() as s:
        rows = s.execute(
            text(
                "SELECT pid, state, wait_event_type, wait_event, left(query, 80) FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        ).all()
    return "\n".join(" | ".join(str(c) for c in row) for row in rows) or "(none)"


def test_processes_started_together_on_a_new_database_migrate_it_one_at_a_time(
    new_database: str, tmp_path: Path
) -> None:
    store = Store(new_database)
    h = Harness(store, tmp_path)
    try:
        h.env["MAINTD_LEASE_TTL"] = str(TTL)
        h.write_plan("targets: []\ntasks: []\n")
        servers = [h.serve("--role", role) for role in ("api", "api", "scheduler", "scheduler")]
        try:
            for server in servers:
                h.wait_for("/healthz", partial(_healthy, server), server, limit=STARTING_TOGETHER)
        except pytest.fail.Exception as failed:
            pytest.fail(f"{failed}\nthe database's sessions:\n{_sessions(store)}")
        # /healthz answers once the API is up, a moment before a scheduler takes the lease.
        h.wait_for("a lease holder", lambda: lease_holder(h), servers[2])
        h.wait_for("the engine to be started", lambda: started_by(h), servers[2])
        assert len(started_by(h)) == 1
    finally:
        h.cleanup()
        store.dispose()
