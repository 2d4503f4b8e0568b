"""Alerts in through maintd's own JSON route, integrations and their keys, and what every
ingest route shares: limits, errors, rate limits, metrics, one alert per delivery."""

from __future__ import annotations

import json
import re
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from maintd.alerts.integrations import IntegrationKind, find_integration
from maintd.auth import Role, create_token
from maintd.cli import app as cli_app
from maintd.engine import Engine
from maintd.store.models import EventRow
from tests.ingest_support import (
    PLAN,
    alert_count,
    alerts,
    chunks,
    client_for,
    incidents,
    make_integrations,
    metric,
)

# rob is a responder, vera a viewer; "scripts" is a native integration, "prom" an Alertmanager one.
DISK = {
    "labels": {"alertname": "DiskFull", "target": "db1", "mount": "/var"},
    "annotations": {"runbook": "https://runbooks.example/disk"},
    "severity": "critical",
    "summary": "/var on db1 is 97% full",
}


@pytest.fixture
def engine(store, write_plan, make_engine) -> Engine:  # type: ignore[no-untyped-def]
    engine = make_engine(store, write_plan(PLAN))
    assert engine.reload().ok
    return engine


@pytest.fixture
def client(engine):  # type: ignore[no-untyped-def]
    with client_for(engine) as c:
        yield c


@pytest.fixture
def headers(engine) -> dict[str, dict[str, str]]:  # type: ignore[no-untyped-def]
    with engine.store.write() as s:
        rob = create_token(s, name="rob", role=Role.responder, now=engine.clock.now(), actor="test")
        vera = create_token(s, name="vera", role=Role.viewer, now=engine.clock.now(), actor="test")
    keys = make_integrations(engine, scripts=IntegrationKind.native, prom=IntegrationKind.alertmanager)
    return {
        "rob": {"Authorization": f"Bearer {rob}"},
        "vera": {"Authorization": f"Bearer {vera}"},
        "scripts": {"Authorization": f"Bearer {keys['scripts']}"},
        "prom": {"Authorization": f"Bearer {keys['prom']}"},
    }


def test_a_responder_posts_an_alert_and_an_incident_opens(client, headers, engine):
    response = client.post("/api/v1/alerts", json=[DISK], headers=headers["rob"])
    assert response.status_code == 200
    (view,) = response.json()["alerts"]
    assert view["outcome"] == "created" and view["status"] == "firing"
    # Committed before the answer: a fresh session sees it.
    (row,) = alerts(engine.store)
    assert (row.id, row.fingerprint, row.source, row.severity) == (
        view["alert_id"],
        view["fingerprint"],
        "native",
        "critical",
    )
    assert row.summary == "/var on db1 is 97% full"
    assert row.annotations == {"runbook": "https://runbooks.example/disk"}
    (incident,) = incidents(engine.store)
    assert (incident.id, incident.priority, incident.state) == (view["incident_id"], "P1", "triggered")
    with engine.store.read() as s:
        kinds = [e.actor for e in s.scalars(select(EventRow).where(EventRow.kind == "alert.firing"))]
    assert kinds == ["token:rob"]


def test_the_same_delivery_twice_is_one_alert(client, headers, engine):
    first = client.post("/api/v1/alerts", json=[DISK], headers=headers["rob"]).json()["alerts"][0]
    again = client.post("/api/v1/alerts", json=[DISK], headers=headers["rob"]).json()["alerts"][0]
    assert again["outcome"] == "updated"
    assert (again["alert_id"], again["incident_id"]) == (first["alert_id"], first["incident_id"])
    (row,) = alerts(engine.store)
    assert row.received == 2
    assert len(incidents(engine.store)) == 1


def test_a_resolved_delivery_resolves_the_alert_and_its_incident(client, headers, engine):
    client.post("/api/v1/alerts", json=[DISK], headers=headers["rob"])
    engine.clock.advance(300)
    resolved = {**DISK, "status": "resolved", "ends_at": "2026-11-27T01:04:00Z"}
    view = client.post("/api/v1/alerts", json=[resolved], headers=headers["rob"]).json()["alerts"][0]
    assert view["outcome"] == "resolved"
    (row,) = alerts(engine.store)
    assert row.status == "resolved" and row.ends_at.isoformat() == "2026-11-27T01:04:00+00:00"
    (incident,) = incidents(engine.store)
    assert incident.state == "resolved"
    # Sent again (a retry): nothing open any more, so it is dropped, not a second resolution.
    view = client.post("/api/v1/alerts", json=[resolved], headers=headers["rob"]).json()["alerts"][0]
    assert view["outcome"] == "dropped" and view["alert_id"] is None


def test_a_batch_answers_each_alert_in_order(client, headers, engine):
    other = {"labels": {"alertname": "Load", "target": "db1"}, "severity": "warning"}
    response = client.post("/api/v1/alerts", json=[DISK, other, DISK], headers=headers["rob"])
    assert [v["outcome"] for v in response.json()["alerts"]] == ["created", "created", "updated"]
    assert [a.summary for a in alerts(engine.store)] == ["/var on db1 is 97% full", "Load"]


def test_posting_alerts_needs_a_responder(client, headers):
    assert client.post("/api/v1/alerts", json=[DISK]).status_code == 401
    response = client.post("/api/v1/alerts", json=[DISK], headers=headers["vera"])
    assert response.status_code == 403
    assert "responder" in response.json()["detail"]


def test_a_native_integration_key_may_post_alerts_and_is_the_actor(client, headers, engine):
    response = client.post("/api/v1/alerts", json=[DISK], headers=headers["scripts"])
    assert response.status_code == 200
    (row,) = alerts(engine.store)
    assert row.integration == "scripts"
    with engine.store.read() as s:
        actors = {e.actor for e in s.scalars(select(EventRow).where(EventRow.kind == "alert.firing"))}
    assert actors == {"integration:scripts"}


def test_another_kinds_key_or_a_disabled_one_may_not_post_native_alerts(client, headers, engine):
    response = client.post("/api/v1/alerts", json=[DISK], headers=headers["prom"])
    assert response.status_code == 403
    assert "alertmanager integration 'prom'" in response.json()["detail"]
    from maintd.alerts.integrations import disable_integration

    with engine.store.write() as s:
        disable_integration(s, name="scripts", now=engine.clock.now(), actor="test")
    response = client.post("/api/v1/alerts", json=[DISK], headers=headers["scripts"])
    assert response.status_code == 401
    assert alert_count(engine.store) == 0


BAD = [
    # (what, body, content type, status, field or None, words in the detail)
    ("malformed JSON", b'[{"labels": ', "application/json", 400, None, "not valid JSON"),
    ("an empty body", b"", "application/json", 400, None, "empty"),
    (
        "not JSON at all",
        b"alertname=DiskFull",
        "application/x-www-form-urlencoded",
        415,
        None,
        "Content-Type",
    ),
    ("no content type", b"[]", "", 415, None, "Content-Type"),
    ("not a list", json.dumps(DISK).encode(), "application/json", 422, "", "valid list"),
    ("an empty list", b"[]", "application/json", 422, "", "at least 1"),
    ("no labels", json.dumps([{"summary": "x"}]).encode(), "application/json", 422, "0.labels", "required"),
    (
        "empty labels",
        json.dumps([{"labels": {}}]).encode(),
        "application/json",
        422,
        "0.labels",
        "at least 1",
    ),
    (
        "a newline in a label value",
        json.dumps([{"labels": {"alertname": "Disk\nFull"}}]).encode(),
        "application/json",
        422,
        "0.labels",
        "control character",
    ),
    (
        "a NUL in a label name",
        json.dumps([{"labels": {"alert\u0000name": "DiskFull"}}]).encode(),
        "application/json",
        422,
        "0.labels",
        "control character",
    ),
    (
        "an unknown field",
        json.dumps([{**DISK, "colour": "red"}]).encode(),
        "application/json",
        422,
        "0.colour",
        "Extra inputs",
    ),
    (
        "an unknown status",
        json.dumps([{**DISK, "status": "burning"}]).encode(),
        "application/json",
        422,
        "0.status",
        "firing",
    ),
    (
        "a severity not ours",
        json.dumps([{**DISK, "severity": "page"}]).encode(),
        "application/json",
        422,
        "0.severity",
        "critical",
    ),
    (
        "a time without a zone",
        json.dumps([{**DISK, "starts_at": "2026-11-27T01:00:00"}]).encode(),
        "application/json",
        422,
        "0.starts_at",
        "timezone",
    ),
    (
        "a time out of range",
        json.dumps([{**DISK, "starts_at": "0001-01-01T00:00:00+01:00"}]).encode(),
        "application/json",
        422,
        "0.starts_at",
        "out of range",
    ),
    (
        "a label value that is not text",
        json.dumps([{"labels": {"alertname": 3}}]).encode(),
        "application/json",
        422,
        "0.labels.alertname",
        "string",
    ),
]


@pytest.mark.parametrize(
    ("what", "body", "content_type", "status", "field", "words"), BAD, ids=[b[0] for b in BAD]
)
def test_bad_input_gets_a_problem_naming_it_and_loses_nothing(
    client, headers, engine, what, body, content_type, status, field, words
):
    client.post("/api/v1/alerts", json=[DISK], headers=headers["rob"])
    response = client.post(
        "/api/v1/alerts", content=body, headers={**headers["rob"], "Content-Type": content_type}
    )
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert words in problem["detail"], problem
    if field is not None:
        assert field in [e["field"] for e in problem["errors"]], problem
    assert alert_count(engine.store) == 1  # the alert accepted before is still there, nothing else
    assert metric(client, "native", "rejected") == 1


def test_a_body_over_the_limit_is_refused_before_it_is_read(client, headers, engine):
    from maintd.api.ingest import NATIVE_MAX_BODY

    big = json.dumps([{**DISK, "annotations": {"blob": "x" * NATIVE_MAX_BODY}}]).encode()
    declared = client.post(
        "/api/v1/alerts", content=big, headers={**headers["rob"], "Content-Type": "application/json"}
    )
    assert declared.status_code == 413
    assert f"the limit is {NATIVE_MAX_BODY}" in declared.json()["detail"]
    streamed = client.post(
        "/api/v1/alerts", content=chunks(big), headers={**headers["rob"], "Content-Type": "application/json"}
    )
    assert streamed.status_code == 413
    assert "over the limit" in streamed.json()["detail"]
    assert alert_count(engine.store) == 0


def test_a_body_just_under_the_limit_is_accepted(client, headers):
    from maintd.api.ingest import NATIVE_MAX_BODY

    padding = NATIVE_MAX_BODY - len(json.dumps([{**DISK, "annotations": {"blob": ""}}]))
    body = json.dumps([{**DISK, "annotations": {"blob": "x" * padding}}]).encode()
    assert len(body) == NATIVE_MAX_BODY
    response = client.post(
        "/api/v1/alerts", content=chunks(body), headers={**headers["rob"], "Content-Type": "application/json"}
    )
    assert response.status_code == 200


def test_a_sender_over_its_rate_gets_429_with_retry_after(store, write_plan, make_engine):
    engine = make_engine(store, write_plan(PLAN), ingest_rate=0.5, ingest_burst=2)
    assert engine.reload().ok
    keys = make_integrations(engine, a=IntegrationKind.native, b=IntegrationKind.native)
    a, b = ({"Authorization": f"Bearer {keys[n]}"} for n in "ab")
    with client_for(engine) as client:
        assert [client.post("/api/v1/alerts", json=[DISK], headers=a).status_code for _ in range(2)] == [
            200,
            200,
        ]
        limited = client.post("/api/v1/alerts", json=[DISK], headers=a)
        assert limited.status_code == 429
        assert limited.headers["retry-after"] == "2"
        assert "integration:a is over its limit of 0.5 requests/s (burst 2)" in limited.json()["detail"]
        assert client.post("/api/v1/alerts", json=[DISK], headers=b).status_code == 200  # its own bucket
        engine.clock.advance(2)
        assert client.post("/api/v1/alerts", json=[DISK], headers=a).status_code == 200
        assert metric(client, "native", "rate_limited") == 1
    (row,) = alerts(store)
    assert row.received == 4  # the limited delivery was not stored


def test_alerts_received_are_counted_by_source_and_outcome(client, headers):
    client.post("/api/v1/alerts", json=[DISK, DISK], headers=headers["rob"])
    client.post("/api/v1/alerts", json=[{**DISK, "status": "resolved"}], headers=headers["rob"])
    assert [metric(client, "native", o) for o in ("created", "updated", "resolved")] == [1, 1, 1]


def test_the_same_new_alert_delivered_at_once_many_times_is_one_alert(client, headers, engine):
    def post(_: int) -> int:
        return int(client.post("/api/v1/alerts", json=[DISK], headers=headers["rob"]).status_code)

    with ThreadPoolExecutor(8) as pool:
        assert set(pool.map(post, range(16))) == {200}
    (row,) = alerts(engine.store)
    assert row.received == 16
    assert len(incidents(engine.store)) == 1


def test_the_openapi_document_describes_each_request_body(client):
    paths = client.get("/openapi.json").json()["paths"]
    native = paths["/api/v1/alerts"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert native["type"] == "array" and "labels" in native["items"]["properties"]
    pd = paths["/v2/enqueue"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert {"routing_key", "event_action", "dedup_key", "payload"} <= set(pd["properties"])
    am = paths["/integrations/alertmanager/{integration_key}"]["post"]
    assert "alerts" in am["requestBody"]["content"]["application/json"]["schema"]["properties"]


# -- maintd integration ... ----------------------------------------------------


@pytest.fixture
def cli(sqlite_store, monkeypatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("MAINTD_DATABASE_URL", sqlite_store.url)
    runner = CliRunner()

    def invoke(*args: str):  # type: ignore[no-untyped-def]
        return runner.invoke(cli_app, list(args), catch_exceptions=False)

    return invoke


def test_integration_create_prints_a_key_once_and_stores_its_hash(cli, sqlite_store):
    result = cli("integration", "create", "--name", "prom-prod", "--kind", "alertmanager")
    assert result.exit_code == 0
    key = result.output.strip()
    assert re.fullmatch(r"[0-9a-f]{32}", key)
    with sqlite_store.read() as s:
        found = find_integration(s, key)
        stored = s.scalars(select(EventRow).where(EventRow.kind == "integration.created")).one()
    assert found is not None and (found.name, found.kind) == ("prom-prod", IntegrationKind.alertmanager)
    assert (stored.subject, stored.payload) == ("integration:prom-prod", {"kind": "alertmanager"})
    assert key not in json.dumps(stored.payload)
    listing = cli("integration", "list").output
    assert "prom-prod" in listing and "alertmanager" in listing and key not in listing


def test_integration_names_are_unique_and_sane(cli):
    assert cli("integration", "create", "--name", "pd", "--kind", "pagerduty").exit_code == 0
    again = cli("integration", "create", "--name", "pd", "--kind", "native")
    assert again.exit_code == 1 and "already exists" in again.output
    odd = cli("integration", "create", "--name", "no spaces", "--kind", "native")
    assert odd.exit_code == 1 and "not a usable name" in odd.output
    kind = cli("integration", "create", "--name", "x", "--kind", "nagios")
    assert kind.exit_code == 2


def test_integration_list_as_json_and_disable(cli, sqlite_store):
    key = cli("integration", "create", "--name", "pd", "--kind", "pagerduty").output.strip()
    cli("integration", "create", "--name", "am", "--kind", "alertmanager")
    result = cli("integration", "disable", "pd")
    assert result.exit_code == 0 and "disabled" in result.output
    rows = [json.loads(line) for line in cli("integration", "list", "--json").output.splitlines()]
    assert [(r["name"], r["kind"], r["disabled_at"] is not None) for r in rows] == [
        ("am", "alertmanager", False),
        ("pd", "pagerduty", True),
    ]
    with sqlite_store.read() as s:
        assert find_integration(s, key) is None  # disabled looks like unknown
        kinds = [e.kind for e in s.scalars(select(EventRow).where(EventRow.subject == "integration:pd"))]
    assert kinds == ["integration.created", "integration.disabled"]
    again = cli("integration", "disable", "pd")
    assert again.exit_code == 1 and "no enabled integration named 'pd'" in again.output


def test_a_very_long_label_value_still_groups_and_is_accepted(store):  # type: ignore[no-untyped-def]
    from maintd.alerts.model import AlertIn
    from maintd.incidents.pipeline import ingest
    from maintd.plan.incidents import IncidentSettings
    from tests.conftest import T0

    long_name = "A" * 300
    with store.write() as s:
        first, second = ingest(
            s,
            [
                AlertIn(source="native", labels={"alertname": long_name, "instance": "a"}),
                AlertIn(source="native", labels={"alertname": long_name, "instance": "b"}),
            ],
            now=T0,
            settings=IncidentSettings(),
            actor="test",
        )
    assert first.incident is not None and second.incident is not None
    assert first.incident.id == second.incident.id
    assert first.incident.group_key.startswith("sha256:")
