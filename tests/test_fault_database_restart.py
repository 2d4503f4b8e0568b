"""Fault test: PostgreSQL restarted under a real ``maintd serve`` while a client posts alerts.

A private cluster (never the shared one on 5432), one ``maintd serve`` process on it, and four
client threads, each posting a new alert after each answer: two to maintd's own route, one as
Alertmanager's webhook, one as a PagerDuty Events v2 client. The test stops the cluster (``pg_ctl
stop -m fast`` or ``-m immediate``: a crash, as far as the server's sessions can tell) and
starts it again, then checks what an operator and a sender see:

- every alert answered 2xx before the stop is stored after the restart;
- requests during the outage get 503 with Retry-After, never 500 and never a hang past the
  client's timeout; ``/readyz`` turns 503 and back to 200;
- the same process takes alerts again and its scheduler still runs tasks: no restart.
"""

from __future__ import annotations

import collections
import http.client
import json
import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.exc import (
    DBAPIError,
    DisconnectionError,
    IntegrityError,
    InterfaceError,
    InvalidRequestError,
    OperationalError,
    PendingRollbackError,
)

from maintd.alerts.integrations import IntegrationKind, create_integration
from maintd.store.db import PG_CONNECT, Store, StoreError
from maintd.store.models import AlertRow
from maintd.store.outage import DEADLINE, unavailable
from tests.harness import T0, Harness, Server, cli, http_get
from tests.notify_support import BlackHole
from tests.postgres_support import BIN, Cluster, _run, clusters

pytestmark = pytest.mark.slow
CLIENT_TIMEOUT = 5.0  # seconds a sender waits for an answer before giving up
ROUTES = ("native", "native", "alertmanager", "pagerduty")  # a client each, posting at once
OK = (200, 202)  # the native and Alertmanager routes answer 200, PagerDuty's 202


@dataclass
class Answer:
    number: str  # the alert's label n: the sender's name and a count
    status: int  # 0: no answer within the client's timeout (or the connection failed)
    retry_after: str | None
    seconds: float
    at: float  # time.monotonic() when the answer came


@dataclass
class Sender:
    """A client posting one new alert after each answer, until stopped."""

    url: str
    key: str  # an API token (native) or the integration's key
    name: str
    route: str = "native"  # or alertmanager, pagerduty
    timeout: float = CLIENT_TIMEOUT
    answers: list[Answer] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    stopping: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        count = 0
        while not self.stopping.is_set():
            count += 1
            self.answers.append(self.post(f"{self.name}-{count}"))
            if self.answers[-1].status not in OK:
                time.sleep(0.05)  # a sender told to come back later does not spin

    def post(self, number: str) -> Answer:
        path, body = self.request(number)
        host, port = self.url.removeprefix("http://").split(":")
        conn = http.client.HTTPConnection(host, int(port), timeout=self.timeout)
        headers = {"Content-Type": "application/json", "Authorization": f"Bearer {self.key}"}
        started = time.monotonic()
        try:
            conn.request("POST", path, json.dumps(body), headers)
            response = conn.getresponse()
            response.read()
            status, retry_after = response.status, response.getheader("Retry-After")
        except OSError as exc:  # a timeout is an OSError too
            self.errors.append(f"alert {number}: {type(exc).__name__}: {exc}")
            status, retry_after = 0, None
        finally:
            conn.close()
        now = time.monotonic()
        return Answer(number, status, retry_after, now - started, now)

    def request(self, number: str) -> tuple[str, Any]:
        """The route's path and body for one new alert, ``number`` in its labels (or dedup_key)."""
        labels = {"alertname": "Fault", "n": number}
        if self.route == "alertmanager":
            alert = {"status": "firing", "labels": labels, "startsAt": "2026-11-27T01:00:00Z"}
            webhook = {"version": "4", "groupKey": number, "status": "firing", "receiver": "maintd"}
            return f"/integrations/alertmanager/{self.key}", {**webhook, "alerts": [alert]}
        if self.route == "pagerduty":
            payload = {"summary": "fault", "source": "db01", "severity": "warning"}
            event = {"routing_key": self.key, "event_action": "trigger", "dedup_key": number}
            return "/v2/enqueue", {**event, "payload": payload}
        return "/api/v1/alerts", [{"labels": labels, "severity": "warning"}]

    def since(self, mark: float) -> list[Answer]:
        return [a for a in list(self.answers) if a.at > mark]


@pytest.fixture
def private(tmp_path: Path) -> Iterator[tuple[Harness, Cluster]]:
    """A world on a throwaway PostgreSQL cluster this test may stop and start."""
    with clusters() as made:
        cluster = made.primary(max_connections=60)
        store = Store(f"postgresql://postgres@127.0.0.1:{cluster.port}/postgres")
        store.upgrade()
        harness = Harness(store, tmp_path)
        try:
            yield harness, cluster
        finally:
            harness.cleanup()
            store.dispose()


def stop(cluster: Cluster, mode: str) -> None:
    _run([str(BIN / "pg_ctl"), "-D", str(cluster.datadir), "-m", mode, "-w", "-t", "30", "stop"], cluster.log)


def frozen(cluster: Cluster) -> list[int]:
    """The cluster's processes: the postmaster and its children (backends, checkpointer...)."""
    master = int((cluster.datadir / "postmaster.pid").read_text().split()[0])
    children = subprocess.run(["pgrep", "-P", str(master)], capture_output=True, text=True, check=False)
    return [master, *(int(pid) for pid in children.stdout.split())]


def readyz(server: Server) -> int:
    return http_get(server.url + "/readyz")[0]


def stored(store: Store) -> set[str]:
    """Each stored alert's n label, or its dedup_key label (PagerDuty's alerts carry that one)."""
    with store.read() as s:
        return {labels.get("n") or labels["dedup_key"] for labels in s.scalars(select(AlertRow.labels))}


@pytest.mark.parametrize("mode", ["fast", "immediate"])
def test_a_database_restart_loses_no_acknowledged_alert_and_the_engine_recovers_by_itself(
    private: tuple[Harness, Cluster], mode: str
) -> None:
    h, cluster = private
    h.write_plan(
        f"""
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
    made = cli("token", "create", "--name", "prometheus", "--role", "responder", env=h.env)
    assert made.returncode == 0, made.stderr
    h.env["MAINTD_INGEST_RATE"] = "100000"  # two clients share the token: no 429 here
    server = h.serve()
    h.wait_ready(server)
    h.wait_for("run 1 of the task", lambda: h.finished("a", 1), server)

    keys = {"native": made.stdout.strip().splitlines()[-1]}
    with h.store.write() as session:
        for kind in (IntegrationKind.alertmanager, IntegrationKind.pagerduty):
            keys[kind] = create_integration(session, name=kind, kind=kind, now=T0, actor="test")
    senders = [Sender(server.url, keys[route], f"s{i}", route) for i, route in enumerate(ROUTES)]
    threads = [threading.Thread(target=s.run, name=s.name, daemon=True) for s in senders]
    for thread in threads:
        thread.start()

    def accepted_since(mark: float) -> int:
        return sum(a.status in OK for s in senders for a in s.since(mark))

    try:
        h.wait_for("30 alerts accepted", lambda: accepted_since(0) >= 30, server)
        stop(cluster, mode)
        stopped = time.monotonic()
        h.wait_for("/readyz to say not ready", lambda: readyz(server) == 503, server)
        h.wait_for("each route answered during the outage", lambda: all(s.since(stopped) for s in senders))
        cluster.start()
        started = time.monotonic()
        h.wait_for("alerts accepted again", lambda: accepted_since(started) >= 30, server)
        h.wait_for("/readyz to say ready again", lambda: readyz(server) == 200, server)
    finally:
        for s in senders:
            s.stopping.set()
        for thread in threads:
            thread.join(CLIENT_TIMEOUT + 5)

    answers = [a for s in senders for a in s.answers]
    assert [e for s in senders for e in s.errors] == [], "every request is answered in the client's timeout"
    statuses = collections.Counter(a.status for a in answers)
    assert set(statuses) == {200, 202, 503}, statuses  # no 500, and the outage was seen
    assert all(a.retry_after is not None and a.retry_after.isdigit() for a in answers if a.status == 503)
    assert max(a.seconds for a in answers) < CLIENT_TIMEOUT
    accepted = {a.number for a in answers if a.status in OK}
    assert accepted - stored(h.store) == set(), "an acknowledged alert is missing after the restart"
    log = server.stderr()
    assert "Traceback" not in log and "database unavailable: " in log, "an outage logs one line per failure"

    # The scheduler of the same process still runs the task: move time on, run 2 comes.
    h.set_clock(T0 + timedelta(minutes=1))
    h.wait_for("run 2 of the task, after the restart", lambda: h.finished("a", 2), server)
    assert server.proc.poll() is None


def test_a_database_that_never_answers_gets_a_503_at_the_deadline_not_a_hang(
    private: tuple[Harness, Cluster],
) -> None:
    """SIGSTOP every process of the cluster: connections open, nothing answers (a frozen host)."""
    h, cluster = private
    h.write_plan("targets: [{name: local, kind: host}]\n")
    made = cli("token", "create", "--name", "prometheus", "--role", "responder", env=h.env)
    assert made.returncode == 0, made.stderr
    server = h.serve()
    h.wait_ready(server)
    sender = Sender(server.url, made.stdout.strip().splitlines()[-1], "f", timeout=DEADLINE + 10)
    assert sender.post("f-1").status == 200

    stopped = frozen(cluster)
    try:
        for pid in stopped:
            os.kill(pid, signal.SIGSTOP)
        answer = sender.post("f-2")
    finally:
        for pid in stopped:
            os.kill(pid, signal.SIGCONT)
    assert sender.errors == []
    assert (answer.status, answer.retry_after) == (503, "5")
    assert DEADLINE - 0.5 < answer.seconds < DEADLINE + 5

    # Thawed: the same process takes alerts again, and the commit the 503 gave up on landed.
    h.wait_for("an alert accepted again", lambda: sender.post("f-3").status == 200, server)
    h.wait_for("f-2 stored after all", lambda: {"f-1", "f-2", "f-3"} <= stored(h.store), server)


def _raised(exc: BaseException, cause: BaseException | None = None) -> BaseException:
    try:
        raise exc from cause
    except BaseException as caught:
        return caught


@pytest.mark.parametrize(
    ("exc", "outage"),
    [
        (OperationalError("SELECT 1", {}, Exception("connection refused")), True),
        (InterfaceError("COMMIT", {}, Exception("connection already closed")), True),
        (DBAPIError("SELECT 1", {}, Exception("server closed"), connection_invalidated=True), True),
        (PendingRollbackError("Can't reconnect until invalid transaction is rolled back", code="8s2b"), True),
        (_raised(InvalidRequestError("This connection is closed"), DisconnectionError()), True),
        (PendingRollbackError("rolled back due to a previous exception during flush", code="7s2a"), False),
        (IntegrityError("INSERT", {}, Exception("duplicate key")), False),
        (DBAPIError("SELECT 1", {}, Exception("integer out of range")), False),
        (ValueError("a bug"), False),
    ],
)
def test_only_a_lost_database_counts_as_an_outage(exc: BaseException, outage: bool) -> None:
    assert unavailable(exc) is outage


def test_a_database_host_that_accepts_and_never_answers_fails_the_connect_in_seconds() -> None:
    silent = BlackHole()  # a TCP server that never speaks: libpq would wait for its greeting forever
    store = Store(f"postgresql://postgres@127.0.0.1:{silent.port}/postgres")
    try:
        started = time.monotonic()
        with pytest.raises(StoreError, match=r"database unreachable: .*timeout"):
            store.ping()
        assert time.monotonic() - started < PG_CONNECT["connect_timeout"] + 3
    finally:
        store.dispose()
        silent.close()
