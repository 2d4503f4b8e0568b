"""``maintd intake``: a real process on a free port, on SQLite and PostgreSQL.

Every bad request gets, from the intake, the answer maintd serve's synchronous route gives
(status, body, Retry-After, WWW-Authenticate): the cases are those routes' own test cases,
sent to both. A 202 means the request's row is committed in the journal.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, select, text

from maintd.alerts.admission import ALERTMANAGER_MAX_BODY, NATIVE_MAX_BODY, PAGERDUTY_MAX_BODY
from maintd.alerts.integrations import IntegrationKind, disable_integration
from maintd.auth import Role, create_token
from maintd.engine import Engine
from maintd.intake.app import QUEUED, _json
from maintd.intake.process import DEFAULT_PORT, port_of
from maintd.store.db import Store, normalise_url
from maintd.store.intake_tables import AlertIntakeRow
from tests import test_alertmanager, test_ingest, test_pagerduty
from tests.conftest import PG_ADMIN_URL
from tests.harness import free_port
from tests.ingest_support import PLAN, chunks, client_for, make_integrations, wait_for

DISK = test_ingest.DISK
WEBHOOK = test_alertmanager.webhook(test_alertmanager.DISK_A)
EVENT = test_pagerduty.EXAMPLE


@dataclass
class Intake:
    proc: subprocess.Popen[bytes]
    url: str
    stderr: Path

    def post(self, path: str, **kwargs: Any) -> httpx.Response:
        return httpx.post(self.url + path, timeout=20, **kwargs)

    def get(self, path: str) -> httpx.Response:
        return httpx.get(self.url + path, timeout=20)


@contextlib.contextmanager
def running(store: Store, tmp_path: Path, **env: str) -> Iterator[Intake]:
    """``maintd intake`` (through the CLI, which execs the light process) on ``store``."""
    port = free_port()
    stderr = tmp_path / f"intake-{port}.stderr"
    base = {k: v for k, v in os.environ.items() if not k.startswith("MAINTD_")}
    with open(stderr, "wb") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "maintd", "intake", "--port", str(port)],
            env={**base, "MAINTD_DATABASE_URL": store.url, **env},
            stdin=subprocess.DEVNULL,
            stdout=err,
            stderr=err,
        )
    intake = Intake(proc, f"http://127.0.0.1:{port}", stderr)

    def up() -> bool:
        assert proc.poll() is None, stderr.read_text()
        try:
            return intake.get("/healthz").status_code == 200
        except httpx.TransportError:
            return False

    try:
        wait_for("maintd intake to answer /healthz", up, timeout=60)  # the CLI imports a lot first
        yield intake
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@dataclass
class World:
    store: Store
    engine: Engine
    sync: TestClient  # maintd serve's routes, in process, on the same database
    intake: Intake
    auth: dict[str, dict[str, str]]  # persona → headers
    keys: dict[str, str]


@pytest.fixture
def world(store, write_plan, make_engine, tmp_path) -> Iterator[World]:  # type: ignore[no-untyped-def]
    engine = make_engine(store, write_plan(PLAN))
    assert engine.reload().ok
    with store.write() as s:
        rob = create_token(s, name="rob", role=Role.responder, now=engine.clock.now(), actor="test")
        vera = create_token(s, name="vera", role=Role.viewer, now=engine.clock.now(), actor="test")
    keys = make_integrations(
        engine,
        scripts=IntegrationKind.native,
        prom=IntegrationKind.alertmanager,
        pd=IntegrationKind.pagerduty,
        gone=IntegrationKind.native,
    )
    with store.write() as s:
        disable_integration(s, name="gone", now=engine.clock.now(), actor="test")
    auth = {
        "rob": {"Authorization": f"Bearer {rob}"},
        "vera": {"Authorization": f"Bearer {vera}"},
        **{name: {"Authorization": f"Bearer {key}"} for name, key in keys.items()},
    }
    with client_for(engine) as sync, running(store, tmp_path) as intake:
        yield World(store, engine, sync, intake, auth, keys)


def journal(store: Store) -> list[AlertIntakeRow]:
    with store.read() as s:
        return list(s.scalars(select(AlertIntakeRow).order_by(AlertIntakeRow.id)))


def same_answer(world: World, path: str, **request: Any) -> httpx.Response:
    """Send the request to both doors; the intake's answer must be the synchronous route's."""
    content = request.get("content")
    if content is not None and not isinstance(content, bytes | str):
        request["content"] = list(content)  # a generator (a chunked body) is sent twice
        ours = world.intake.post(path, **{**request, "content": iter(request["content"])})
        theirs = world.sync.post(path, **{**request, "content": iter(request["content"])})
    else:
        ours, theirs = world.intake.post(path, **request), world.sync.post(path, **request)
    assert (ours.status_code, ours.json()) == (theirs.status_code, theirs.json()), request
    for header in ("content-type", "retry-after", "www-authenticate"):
        assert ours.headers.get(header) == theirs.headers.get(header), header
    return ours


# -- accepted: journaled before the 202 -------------------------------------------


def test_a_native_request_is_journaled_before_its_202(world: World):
    body = json.dumps([DISK, {**DISK, "labels": {"alertname": "Load"}}]).encode()
    headers = {**world.auth["rob"], "Content-Type": "application/json"}
    answer = world.intake.post("/api/v1/alerts", content=body, headers=headers)
    assert answer.status_code == 202
    assert answer.headers["content-type"] == "application/json"
    (row,) = journal(world.store)  # committed: another connection sees it
    assert answer.json() == {"status": "queued", "alerts": 2, "intake_id": row.id}
    assert (row.source, row.actor, row.integration, row.dedup_key) == ("native", "token:rob", None, None)
    assert row.body == body and row.error is None and row.attempts == 0
    by_key = world.intake.post("/api/v1/alerts", json=[DISK], headers=world.auth["scripts"])
    assert by_key.status_code == 202
    assert (journal(world.store)[1].actor, journal(world.store)[1].integration) == (
        "integration:scripts",
        "scripts",
    )
    assert by_key.json()["intake_id"] > row.id


def test_the_queued_answer_is_the_json_answer_byte_for_byte():
    for count, intake_id in ((1, 1), (100, 2**53), (0, 7)):
        made = _json(202, {"status": "queued", "alerts": count, "intake_id": intake_id})
        assert QUEUED % (count, intake_id) == made.body


def test_an_alertmanager_webhook_is_journaled_with_its_integration(world: World):
    answer = world.intake.post(f"/integrations/alertmanager/{world.keys['prom']}", json=WEBHOOK)
    assert answer.status_code == 202
    (row,) = journal(world.store)
    assert answer.json() == {"status": "queued", "alerts": 1, "intake_id": row.id}
    assert (row.source, row.actor, row.integration) == ("alertmanager", "integration:prom", "prom")
    assert json.loads(row.body) == WEBHOOK


def test_a_pagerduty_event_is_journaled_with_the_dedup_key_it_was_answered(world: World):
    given = world.intake.post("/v2/enqueue", json={**EVENT, "routing_key": world.keys["pd"]})
    assert given.status_code == 202
    assert given.json() == {"status": "success", "message": "Event processed", "dedup_key": "srv01/mysql"}
    without = {k: v for k, v in EVENT.items() if k != "dedup_key"}
    made = world.intake.post("/v2/enqueue", json={**without, "routing_key": world.keys["pd"]})
    assert made.status_code == 202
    first, second = journal(world.store)
    assert (first.source, first.actor, first.integration) == ("pagerduty", "integration:pd", "pd")
    assert first.dedup_key == "srv01/mysql"
    assert second.dedup_key == made.json()["dedup_key"] and len(second.dedup_key or "") == 32


def test_many_requests_at_once_are_each_journaled_once(world: World):
    import concurrent.futures

    def post(i: int) -> int:
        alert = {**DISK, "labels": {"alertname": "Load", "i": str(i)}}
        answer = world.intake.post("/api/v1/alerts", json=[alert], headers=world.auth["rob"])
        assert answer.status_code == 202, answer.text
        return int(answer.json()["intake_id"])

    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        ids = list(pool.map(post, range(200)))
    rows = journal(world.store)
    assert sorted(ids) == [r.id for r in rows]  # every answered id is its own committed row
    assert {json.loads(r.body)[0]["labels"]["i"] for r in rows} == {str(i) for i in range(200)}


# -- refused: the synchronous routes' answers, nothing journaled ---------------------


def test_every_bad_native_request_gets_the_synchronous_routes_answer(world: World):
    for what, body, content_type, _status, _field, _words in test_ingest.BAD:
        headers = {**world.auth["rob"], "Content-Type": content_type}
        assert same_answer(world, "/api/v1/alerts", content=body, headers=headers).status_code >= 400, what
    for persona in (None, "vera", "prom", "gone"):
        headers = world.auth[persona] if persona else {}
        same_answer(world, "/api/v1/alerts", json=[DISK], headers=headers)
    same_answer(world, "/api/v1/alerts", json=[DISK], headers={"Authorization": "Bearer mtd_nope"})
    same_answer(world, "/api/v1/alerts", json=[DISK], headers={"Authorization": "Basic x"})
    big = json.dumps([{**DISK, "annotations": {"blob": "x" * NATIVE_MAX_BODY}}]).encode()
    headers = {**world.auth["rob"], "Content-Type": "application/json"}
    assert same_answer(world, "/api/v1/alerts", content=big, headers=headers).status_code == 413
    assert same_answer(world, "/api/v1/alerts", content=chunks(big), headers=headers).status_code == 413
    assert journal(world.store) == []


def test_every_bad_alertmanager_request_gets_the_synchronous_routes_answer(world: World):
    url = f"/integrations/alertmanager/{world.keys['prom']}"
    for what, body, content_type, _status, _field, _words in test_alertmanager.BAD:
        content = body if isinstance(body, bytes) else json.dumps(body).encode()
        response = same_answer(world, url, content=content, headers={"Content-Type": content_type})
        assert response.status_code >= 400, what
    for key in ("0" * 32, world.keys["pd"], world.keys["gone"]):
        assert same_answer(world, f"/integrations/alertmanager/{key}", json=WEBHOOK).status_code == 404
    big = json.dumps(
        test_alertmanager.webhook({**test_alertmanager.DISK_A, "blob": "x" * ALERTMANAGER_MAX_BODY})
    )
    for content in (big.encode(), chunks(big.encode())):
        headers = {"Content-Type": "application/json"}
        assert same_answer(world, url, content=content, headers=headers).status_code == 413
    assert journal(world.store) == []


def test_every_bad_pagerduty_event_gets_the_synchronous_routes_answer(world: World):
    for what, change, _words in test_pagerduty.INVALID:
        body = {**EVENT, "routing_key": world.keys["pd"]}
        for name, value in change.items():
            if value is None:
                body.pop(name)
            else:
                body[name] = world.keys.get(value, value) if isinstance(value, str) else value
        assert same_answer(world, "/v2/enqueue", json=body).status_code == 400, what
    for content, content_type in [
        (b'{"routing_key": ', "application/json"),
        (b"", "application/json"),
        (b"routing_key=x", "application/x-www-form-urlencoded"),
        (b"[]", "application/json"),
    ]:
        assert same_answer(world, "/v2/enqueue", content=content, headers={"Content-Type": content_type})
    follow_up = {"routing_key": world.keys["pd"], "event_action": "resolve"}
    same_answer(world, "/v2/enqueue", json=follow_up)
    big = {**EVENT, "routing_key": world.keys["pd"]}
    big["payload"] = {**EVENT["payload"], "custom_details": {"blob": "x" * PAGERDUTY_MAX_BODY}}  # type: ignore[dict-item]
    for content in (json.dumps(big).encode(), chunks(json.dumps(big).encode())):
        headers = {"Content-Type": "application/json"}
        assert same_answer(world, "/v2/enqueue", content=content, headers=headers).status_code == 413
    assert journal(world.store) == []


def test_a_sender_over_its_rate_gets_the_synchronous_routes_429(store, write_plan, make_engine, tmp_path):
    engine = make_engine(store, write_plan(PLAN), ingest_rate=0.5, ingest_burst=2)
    assert engine.reload().ok
    keys = make_integrations(engine, a=IntegrationKind.native, pd=IntegrationKind.pagerduty)
    native = {"Authorization": f"Bearer {keys['a']}"}
    event = {**EVENT, "routing_key": keys["pd"]}
    env = {"MAINTD_INGEST_RATE": "0.5", "MAINTD_INGEST_BURST": "2"}
    with client_for(engine) as sync, running(store, tmp_path, **env) as intake:
        for door in (sync, intake):
            assert [door.post("/api/v1/alerts", json=[DISK], headers=native).status_code for _ in "ab"] in (
                [200, 200],
                [202, 202],
            )
            assert [door.post("/v2/enqueue", json=event).status_code for _ in "ab"] == [202, 202]
        ours = intake.post("/api/v1/alerts", json=[DISK], headers=native)
        theirs = sync.post("/api/v1/alerts", json=[DISK], headers=native)
        assert (ours.status_code, ours.json()) == (theirs.status_code, theirs.json())
        assert ours.headers["retry-after"] == theirs.headers["retry-after"] == "2"
        ours, theirs = intake.post("/v2/enqueue", json=event), sync.post("/v2/enqueue", json=event)
        assert (ours.status_code, ours.json(), ours.headers["retry-after"]) == (
            429,
            theirs.json(),
            theirs.headers["retry-after"],
        )
        assert ours.json()["status"] == "throttle event"
        metrics = intake.get("/metrics").text
    assert len(journal(store)) == 4  # the limited requests were not journaled
    assert 'maintd_intake_requests_total{source="native",outcome="rate_limited"} 1' in metrics
    assert 'maintd_intake_requests_total{source="pagerduty",outcome="queued"} 2' in metrics


# -- the database away: 503, nothing half-stored ---------------------------------


def test_an_unreachable_database_gets_503_with_retry_after_and_stores_nothing(pg_store: Store, tmp_path):
    name = pg_store.engine.url.database
    (key,) = make_integrations_in(pg_store, scripts=IntegrationKind.native).values()
    headers = {"Authorization": f"Bearer {key}"}
    admin = create_engine(normalise_url(PG_ADMIN_URL), isolation_level="AUTOCOMMIT")  # not in that database
    with running(pg_store, tmp_path) as intake:
        assert intake.post("/api/v1/alerts", json=[DISK], headers=headers).status_code == 202
        try:
            with admin.connect() as conn:
                conn.execute(text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false'))
                conn.execute(
                    text(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                        "WHERE datname = :name AND pid <> pg_backend_pid()"
                    ),
                    {"name": name},
                )
            refused = intake.post("/api/v1/alerts", json=[DISK], headers=headers)
            assert refused.status_code == 503, refused.text
            assert refused.headers["retry-after"] == "5"
            assert refused.headers["content-type"] == "application/problem+json"
            assert refused.json()["title"] == "Database unavailable"
            assert "a repeat is harmless" in refused.json()["detail"]
            ready = intake.get("/readyz")
            assert ready.status_code == 503 and ready.json()["ready"] is False
        finally:
            with admin.connect() as conn:
                conn.execute(text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true'))
        # Back: the next request is stored, on a new connection.
        assert intake.post("/api/v1/alerts", json=[DISK], headers=headers).status_code == 202
        assert intake.get("/readyz").json() == {"ready": True, "checks": {"database": "ok"}}
        metrics = intake.get("/metrics").text
    admin.dispose()
    assert len(journal(pg_store)) == 2
    assert 'maintd_intake_requests_total{source="native",outcome="unavailable"} 1' in metrics


def make_integrations_in(store: Store, **kinds: IntegrationKind) -> dict[str, str]:
    from maintd.alerts.integrations import create_integration
    from tests.conftest import T0

    with store.write() as s:
        return {n: create_integration(s, name=n, kind=k, now=T0, actor="test") for n, k in kinds.items()}


# -- the process ------------------------------------------------------------------


def test_health_readiness_metrics_and_unknown_paths(world: World):
    assert world.intake.get("/healthz").json() == {"status": "ok"}
    assert world.intake.get("/readyz").json() == {"ready": True, "checks": {"database": "ok"}}
    world.intake.post("/api/v1/alerts", json=[DISK, DISK], headers=world.auth["rob"])
    world.intake.post(
        "/api/v1/alerts", content=b"[", headers={**world.auth["rob"], "Content-Type": "application/json"}
    )
    metrics = world.intake.get("/metrics")
    assert metrics.headers["content-type"].startswith("text/plain; version=0.0.4")
    assert 'maintd_intake_requests_total{source="native",outcome="queued"} 1' in metrics.text
    assert 'maintd_intake_requests_total{source="native",outcome="rejected"} 1' in metrics.text
    assert 'maintd_intake_alerts_total{source="native"} 2' in metrics.text
    missing = world.intake.get("/api/v1/incidents")
    assert (missing.status_code, missing.json()["title"]) == (404, "Not found")
    assert world.intake.post("/integrations/alertmanager/", json=WEBHOOK).status_code == 404
    wrong = world.intake.get("/api/v1/alerts")
    assert (wrong.status_code, wrong.headers["allow"]) == (405, "POST")


def test_it_refuses_to_start_on_a_database_without_the_journal(tmp_path):
    empty = tmp_path / "empty.db"
    empty.touch()
    for url, words in [
        (f"sqlite:///{empty}", "no such table: alert_intake"),
        (f"sqlite:///{tmp_path / 'missing.db'}", "unable to open database file"),
        ("mysql://localhost/maintd", "takes sqlite:///PATH or postgresql://"),
    ]:
        done = subprocess.run(
            [sys.executable, "-m", "maintd.intake", "--db", url, "--port", str(free_port())],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert done.returncode == 2 and words in done.stderr, done.stderr


def test_the_intake_process_imports_no_sqlalchemy_framework_or_engine():
    # Nor either database's driver: each is loaded by the journal that uses it, on first connect.
    probe = (
        "import sys, maintd.intake.__main__\n"
        "heavy = ('sqlalchemy', 'fastapi', 'starlette', 'maintd.store', 'maintd.engine', 'maintd.checks',"
        " 'maintd.api.app', 'maintd.incidents', 'psycopg', 'sqlite3', 'uvicorn')\n"
        "print(sorted(m for m in sys.modules if m.startswith(heavy)))\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=30)
    assert done.stdout.strip() == "[]", done.stdout + done.stderr


def test_the_postgresql_connect_options_are_the_stores():
    from maintd.intake.database import PG_CONNECT
    from maintd.store import db

    assert PG_CONNECT == db.PG_CONNECT


@pytest.mark.parametrize(
    "scheme",
    [
        *("sqlite", "sqlite+pysqlite", "sqlite+aiosqlite", "postgres", "postgresql", "postgresql+psycopg"),
        *("postgresql+psycopg2", "postgresql+asyncpg", "mysql", "mariadb+pymysql"),
    ],
)
def test_the_intake_takes_the_database_urls_the_store_takes(scheme: str) -> None:
    """Two lists of what is accepted (the intake imports no SQLAlchemy): kept the same here."""
    from maintd.intake.database import opener
    from maintd.store.db import StoreError

    url = f"{scheme}:///x.db" if scheme.startswith("sqlite") else f"{scheme}://u@127.0.0.1:1/db"
    try:
        Store(url).dispose()
        store_takes = True
    except StoreError:
        store_takes = False
    try:
        opener(url)
        intake_takes = True
    except ValueError:
        intake_takes = False
    assert intake_takes == store_takes


def test_end_to_end_alerts_through_the_intake_become_incidents_in_maintd_serve(store: Store, tmp_path):
    from maintd.alerts.integrations import create_integration
    from maintd.store.models import AlertRow, IncidentRow
    from tests.harness import T0, Harness

    h = Harness(store, tmp_path)
    try:
        h.write_plan(PLAN)
        with store.write() as s:
            rob = create_token(s, name="rob", role=Role.responder, now=T0, actor="test")
            keys = {
                kind: create_integration(s, name=kind, kind=IntegrationKind(kind), now=T0, actor="test")
                for kind in ("alertmanager", "pagerduty")
            }
        server = h.serve()
        h.wait_ready(server)
        with running(store, tmp_path) as intake:
            native = intake.post("/api/v1/alerts", json=[DISK], headers={"Authorization": f"Bearer {rob}"})
            webhook = intake.post(f"/integrations/alertmanager/{keys['alertmanager']}", json=WEBHOOK)
            event = intake.post("/v2/enqueue", json={**EVENT, "routing_key": keys["pagerduty"]})
            assert [r.status_code for r in (native, webhook, event)] == [202, 202, 202]

            def drained() -> list[AlertRow] | None:
                with store.read() as s:
                    rows = list(s.scalars(select(AlertRow).order_by(AlertRow.id)))
                return rows if len(rows) == 3 and not journal(store) else None

            rows = h.wait_for("the journal drained into three alerts", drained, server)
        assert [(r.source, r.integration) for r in rows] == [
            ("native", None),
            ("alertmanager", "alertmanager"),
            ("pagerduty", "pagerduty"),
        ]
        assert rows[2].labels["dedup_key"] == event.json()["dedup_key"]
        with store.read() as s:
            assert len(list(s.scalars(select(IncidentRow)))) >= 1
    finally:
        h.cleanup()


# -- the HTTP server (maintd.intake.http): raw bytes on a socket --------------------


def exchange(intake: Intake, data: bytes, *, until: bytes = b"", chunks_: int = 1) -> bytes:
    """Send ``data``; read until the peer closes, ``until`` has been seen ``chunks_`` times, or 10 s."""
    import socket

    port = int(intake.url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(data)
        got = b""
        while not (until and got.count(until) >= chunks_):
            part = sock.recv(65536)
            if not part:
                break
            got += part
        return got


def test_the_server_answers_pipelined_requests_in_order_and_honours_expect_and_close(sqlite_store, tmp_path):
    with running(sqlite_store, tmp_path) as intake:
        two = exchange(
            intake,
            b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\nGET /nowhere HTTP/1.1\r\nHost: x\r\n\r\n",
            until=b"}",
            chunks_=2,
        )
        assert two.index(b"HTTP/1.1 200 OK") < two.index(b"HTTP/1.1 404 Not Found")
        body = b"[]"
        expecting = exchange(
            intake,
            b"POST /api/v1/alerts HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Expect: 100-continue\r\nConnection: close\r\nContent-Length: 2\r\n\r\n" + body,
        )
        assert expecting.startswith(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 401 Unauthorized\r\n")
        assert b"connection: close\r\n" in expecting  # and the peer closed: exchange returned
        assert exchange(intake, b"NOT HTTP AT ALL\r\n\r\n").startswith(b"HTTP/1.1 400 Bad Request")
        huge = b"GET /healthz HTTP/1.1\r\nX-Big: " + b"x" * (70 * 1024) + b"\r\n\r\n"
        assert exchange(intake, huge).startswith(b"HTTP/1.1 431 ")
        assert intake.get("/healthz").status_code == 200  # and it keeps serving
        intake.proc.terminate()
        assert intake.proc.wait(10) == 0


@pytest.mark.parametrize(
    ("given", "env", "expected"),
    [
        (None, {}, DEFAULT_PORT),
        (None, {"MAINTD_PORT": "9000"}, 9000),
        (None, {"MAINTD_PORT": "9000", "MAINTD_INTAKE_PORT": "9001"}, 9001),
        (9002, {"MAINTD_INTAKE_PORT": "9001"}, 9002),
        (None, {"MAINTD_PORT": "soon"}, "the port must be a number, not 'soon'"),
        (None, {"MAINTD_INTAKE_PORT": "70000"}, "the port must be between 0 and 65535, not 70000"),
        (-1, {}, "the port must be between 0 and 65535, not -1"),
    ],
)
def test_the_port_comes_from_the_flag_then_the_environment_and_is_a_port(
    given: int | None, env: dict[str, str], expected: int | str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("MAINTD_PORT", "MAINTD_INTAKE_PORT"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    if isinstance(expected, int):
        assert port_of(given) == expected
    else:
        with pytest.raises(ValueError, match=expected):
            port_of(given)
