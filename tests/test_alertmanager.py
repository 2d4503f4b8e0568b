"""Prometheus Alertmanager's webhook at /integrations/alertmanager/KEY: the payload as
Alertmanager sends it, and a real Alertmanager (Debian's prometheus-alertmanager) posting
to a real maintd over HTTP."""

from __future__ import annotations

import json
import logging
import shutil
import socket
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
import uvicorn

from maintd.alerts.formats.alertmanager import AlertmanagerWebhook, to_alerts
from maintd.alerts.integrations import IntegrationKind, disable_integration
from maintd.api.app import create_app
from maintd.api.deps import AppContext
from maintd.api.ingest import ALERTMANAGER_MAX_BODY
from maintd.clock import SystemClock
from maintd.engine import Engine
from maintd.metrics import Metrics
from maintd.store.db import Store
from tests.ingest_support import (
    PLAN,
    alert_count,
    alerts,
    chunks,
    client_for,
    incidents,
    make_integrations,
    metric,
    wait_for,
)
from tests.ports import free_port

ALERTMANAGER = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")

DISK_A = {
    "status": "firing",
    "labels": {"alertname": "DiskFull", "target": "db1", "instance": "db1:9100", "severity": "critical"},
    "annotations": {"summary": "/var on db1 is 97% full", "runbook_url": "https://runbooks.example/disk"},
    "startsAt": "2026-11-27T00:58:00.123456789Z",
    "endsAt": "0001-01-01T00:00:00Z",
    "generatorURL": "http://prometheus:9090/graph?g0.expr=disk",
    "fingerprint": "",
}


def webhook(*alerts_: dict[str, object], status: str = "firing", **extra: object) -> dict[str, object]:
    """A webhook body as Alertmanager 0.25+ sends it (version 4)."""
    return {
        "receiver": "maintd",
        "status": status,
        "alerts": list(alerts_),
        "groupLabels": {"alertname": "DiskFull"},
        "commonLabels": {"alertname": "DiskFull"},
        "commonAnnotations": {},
        "externalURL": "http://alertmanager:9093",
        "version": "4",
        "groupKey": '{}:{alertname="DiskFull"}',
        "truncatedAlerts": 0,
        **extra,
    }


@pytest.fixture
def engine(store, write_plan, make_engine) -> Engine:  # type: ignore[no-untyped-def]
    engine = make_engine(store, write_plan(PLAN))
    assert engine.reload().ok
    return engine


@pytest.fixture
def keys(engine) -> dict[str, str]:  # type: ignore[no-untyped-def]
    return make_integrations(engine, prom=IntegrationKind.alertmanager, pd=IntegrationKind.pagerduty)


@pytest.fixture
def client(engine):  # type: ignore[no-untyped-def]
    with client_for(engine) as c:
        yield c


def test_a_firing_alert_opens_an_incident(client, keys, engine):
    response = client.post(f"/integrations/alertmanager/{keys['prom']}", json=webhook(DISK_A))
    assert response.status_code == 200
    (view,) = response.json()["alerts"]
    assert view["outcome"] == "created"
    (row,) = alerts(engine.store)
    assert (row.source, row.integration, row.severity, row.status) == (
        "alertmanager",
        "prom",
        "critical",
        "firing",
    )
    assert row.summary == "/var on db1 is 97% full"
    assert row.starts_at.isoformat() == "2026-11-27T00:58:00.123456+00:00"
    assert row.ends_at is None  # the zero time means "not set"
    assert row.annotations["generator_url"] == "http://prometheus:9090/graph?g0.expr=disk"
    (incident,) = incidents(engine.store)
    assert (incident.id, incident.priority) == (view["incident_id"], "P1")


def test_the_same_notification_again_is_one_alert(client, keys, engine):
    url = f"/integrations/alertmanager/{keys['prom']}"
    client.post(url, json=webhook(DISK_A))
    again = client.post(url, json=webhook(DISK_A)).json()["alerts"][0]
    assert again["outcome"] == "updated"
    (row,) = alerts(engine.store)
    assert row.received == 2
    assert len(incidents(engine.store)) == 1


def test_a_resolved_notification_resolves_the_alert_and_the_incident(client, keys, engine):
    url = f"/integrations/alertmanager/{keys['prom']}"
    other = {**DISK_A, "labels": {**DISK_A["labels"], "instance": "db1:9200"}}  # type: ignore[dict-item]
    client.post(url, json=webhook(DISK_A, other))
    resolved = {**DISK_A, "status": "resolved", "endsAt": "2026-11-27T01:05:00Z"}
    views = client.post(url, json=webhook(resolved, other)).json()["alerts"]
    assert [v["outcome"] for v in views] == ["resolved", "updated"]
    assert incidents(engine.store)[0].state == "triggered"  # one of its alerts still fires
    other_resolved = {**other, "status": "resolved", "endsAt": "2026-11-27T01:06:00Z"}
    client.post(url, json=webhook(resolved, other_resolved, status="resolved"))
    assert [(a.status, a.ends_at.isoformat()) for a in alerts(engine.store)] == [  # type: ignore[union-attr]
        ("resolved", "2026-11-27T01:05:00+00:00"),
        ("resolved", "2026-11-27T01:06:00+00:00"),
    ]
    assert incidents(engine.store)[0].state == "resolved"


def test_fields_newer_alertmanagers_add_are_accepted(client, keys):
    body = webhook(
        {**DISK_A, "silenceURL": "http://x"}, notification_reason="repeat", routeLabels={"team": "db"}
    )
    assert client.post(f"/integrations/alertmanager/{keys['prom']}", json=body).status_code == 200


@pytest.mark.parametrize(
    ("labels", "annotations", "severity", "summary"),
    [
        ({"alertname": "A", "severity": "critical"}, {"summary": "s", "description": "d"}, "critical", "s"),
        ({"alertname": "A", "severity": "warning"}, {"description": "d"}, "warning", "d"),
        ({"alertname": "A", "severity": "info"}, {}, "info", "A"),
        ({"alertname": "A", "severity": "page"}, {}, "error", "A"),  # not one of ours
        ({"alertname": "A"}, {}, "error", "A"),
    ],
)
def test_severity_comes_from_the_label_and_summary_from_the_annotations(
    labels, annotations, severity, summary
):
    body = webhook({**DISK_A, "labels": labels, "annotations": annotations})
    (alert,) = to_alerts(AlertmanagerWebhook.model_validate(body), integration="prom")
    assert (alert.severity.value, alert.summary) == (severity, summary)


def test_a_firing_alerts_ends_at_is_ignored(client, keys, engine):
    firing = {**DISK_A, "endsAt": "2026-11-27T01:03:00Z"}  # Alertmanager's guess when it goes stale
    client.post(f"/integrations/alertmanager/{keys['prom']}", json=webhook(firing))
    assert alerts(engine.store)[0].ends_at is None


def test_a_fingerprint_other_than_ours_is_logged_and_the_labels_decide(client, keys, engine, caplog):
    with caplog.at_level(logging.WARNING, logger="maintd.api.ingest"):
        client.post(
            f"/integrations/alertmanager/{keys['prom']}", json=webhook({**DISK_A, "fingerprint": "0" * 16})
        )
    assert "fingerprint 0000000000000000 sent" in caplog.text
    assert alerts(engine.store)[0].fingerprint != "0" * 16


@pytest.mark.parametrize(
    ("key", "words"),
    [
        ("0" * 32, "unknown or disabled integration key"),
        ("pd", "this key belongs to the pagerduty integration 'pd'"),
        ("prom-disabled", "unknown or disabled integration key"),
    ],
)
def test_a_key_that_is_not_an_enabled_alertmanager_integration_is_404(client, keys, engine, key, words):
    if key == "prom-disabled":
        with engine.store.write() as s:
            disable_integration(s, name="prom", now=engine.clock.now(), actor="test")
        key = "prom"
    response = client.post(f"/integrations/alertmanager/{keys.get(key, key)}", json=webhook(DISK_A))
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert words in response.json()["detail"]
    assert alert_count(engine.store) == 0


BAD = [
    # (what, body, content type, status, field or None, words in the detail)
    ("malformed JSON", b'{"version": "4", ', "application/json", 400, None, "not valid JSON"),
    ("a form", b"version=4", "application/x-www-form-urlencoded", 415, None, "Content-Type"),
    ("version 3", webhook(DISK_A, version="3"), "application/json", 422, "version", "'4'"),
    (
        "no alerts",
        {k: v for k, v in webhook().items() if k != "alerts"},
        "application/json",
        422,
        "alerts",
        "",
    ),
    ("an empty alert list", webhook(), "application/json", 422, "alerts", "at least 1"),
    (
        "no receiver",
        {k: v for k, v in webhook(DISK_A).items() if k != "receiver"},
        "application/json",
        422,
        "receiver",
        "",
    ),
    (
        "an alert without labels",
        webhook({k: v for k, v in DISK_A.items() if k != "labels"}),
        "application/json",
        422,
        "alerts.0.labels",
        "",
    ),
    (
        "a tab in a label value",
        webhook({**DISK_A, "labels": {"alertname": "Disk\tFull"}}),
        "application/json",
        422,
        "alerts.0.labels",
        "control character",
    ),
    (
        "an unknown status",
        webhook({**DISK_A, "status": "pending"}),
        "application/json",
        422,
        "alerts.0.status",
        "",
    ),
    ("a bad time", webhook({**DISK_A, "startsAt": "soon"}), "application/json", 422, "alerts.0.startsAt", ""),
]


@pytest.mark.parametrize(
    ("what", "body", "content_type", "status", "field", "words"), BAD, ids=[b[0] for b in BAD]
)
def test_bad_input_gets_a_problem_naming_it_and_loses_nothing(
    client, keys, engine, what, body, content_type, status, field, words
):
    url = f"/integrations/alertmanager/{keys['prom']}"
    client.post(url, json=webhook(DISK_A))
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    response = client.post(url, content=content, headers={"Content-Type": content_type})
    assert response.status_code == status, response.text
    problem = response.json()
    assert words in problem["detail"], problem
    if field is not None:
        assert field in [e["field"] for e in problem["errors"]], problem
    assert alert_count(engine.store) == 1
    assert metric(client, "alertmanager", "rejected") == 1


def test_a_body_over_the_limit_is_413(client, keys, engine):
    big = json.dumps(webhook({**DISK_A, "annotations": {"blob": "x" * ALERTMANAGER_MAX_BODY}})).encode()
    url = f"/integrations/alertmanager/{keys['prom']}"
    for content in (big, chunks(big)):
        response = client.post(url, content=content, headers={"Content-Type": "application/json"})
        assert response.status_code == 413
    assert alert_count(engine.store) == 0


def test_an_alertmanager_over_its_rate_gets_429(store, write_plan, make_engine):
    engine = make_engine(store, write_plan(PLAN), ingest_rate=10, ingest_burst=3)
    assert engine.reload().ok
    (key,) = make_integrations(engine, prom=IntegrationKind.alertmanager).values()
    with client_for(engine) as client:
        codes = [
            client.post(f"/integrations/alertmanager/{key}", json=webhook(DISK_A)).status_code
            for _ in range(4)
        ]
        assert codes == [200, 200, 200, 429]
        engine.clock.advance(0.1)
        assert client.post(f"/integrations/alertmanager/{key}", json=webhook(DISK_A)).status_code == 200


# -- a real Alertmanager -----------------------------------------------------------


@dataclass
class RealAlertmanager:
    url: str

    def post(self, *alerts_: dict[str, object]) -> None:
        response = httpx.post(f"{self.url}/api/v2/alerts", json=list(alerts_), timeout=5)
        assert response.status_code == 200, response.text

    def fingerprints(self) -> dict[str, str]:
        """instance label → the fingerprint Alertmanager gives the alert."""
        found = httpx.get(f"{self.url}/api/v2/alerts", timeout=5).json()
        return {a["labels"]["instance"]: a["fingerprint"] for a in found}


@pytest.fixture
def maintd_url(store: Store) -> Iterator[str]:
    """A real maintd API (uvicorn, in a thread) on a free port."""
    app = create_app(AppContext(store, SystemClock(), Metrics()))
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    wait_for("maintd to serve", lambda: server.started, timeout=10)
    yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    server.should_exit = True
    thread.join(10)
    sock.close()


@pytest.fixture
def alertmanager(store: Store, maintd_url: str, tmp_path: Path) -> Iterator[RealAlertmanager]:
    if ALERTMANAGER is None:
        pytest.fail("Alertmanager is required: apt-get install prometheus-alertmanager")
    with store.write() as s:
        from maintd.alerts.integrations import create_integration

        key = create_integration(
            s, name="prom", kind=IntegrationKind.alertmanager, now=SystemClock().now(), actor="test"
        )
    config = tmp_path / "alertmanager.yml"
    config.write_text(
        json.dumps(  # YAML is a superset of JSON
            {
                "route": {
                    "receiver": "maintd",
                    "group_by": ["alertname"],
                    "group_wait": "0s",
                    "group_interval": "1s",
                    "repeat_interval": "12h",
                },
                "receivers": [
                    {
                        "name": "maintd",
                        "webhook_configs": [
                            {"url": f"{maintd_url}/integrations/alertmanager/{key}", "send_resolved": True}
                        ],
                    }
                ],
            }
        )
    )
    port = free_port()
    log = (tmp_path / "alertmanager.log").open("w")
    process = subprocess.Popen(
        [
            ALERTMANAGER,
            f"--config.file={config}",
            f"--storage.path={tmp_path / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--cluster.listen-address=",
            "--log.level=debug",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"

    def ready() -> bool:
        assert process.poll() is None, (tmp_path / "alertmanager.log").read_text()
        try:
            return httpx.get(f"{url}/-/ready", timeout=1).status_code == 200
        except httpx.TransportError:
            return False

    try:
        wait_for("Alertmanager to be ready", ready, timeout=15)
        yield RealAlertmanager(url)
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def test_a_real_alertmanager_opens_dedups_and_resolves_an_incident(alertmanager, store, caplog):
    caplog.set_level(logging.WARNING, logger="maintd.api.ingest")
    started = datetime.now(UTC) - timedelta(minutes=1)
    labels = {"alertname": "DiskFull", "target": "db1", "severity": "critical"}
    disk_a = {
        "labels": {**labels, "instance": "db1:9100"},
        "annotations": {"summary": "/var on db1 is 97% full"},
        "startsAt": started.isoformat(),
        "generatorURL": "http://prometheus:9090/graph",
    }
    disk_b = {**disk_a, "labels": {**labels, "instance": "db1:9200"}}

    alertmanager.post(disk_a)
    (first,) = wait_for("the first alert in maintd", lambda: alerts(store))
    assert (first.source, first.status, first.summary) == (
        "alertmanager",
        "firing",
        "/var on db1 is 97% full",
    )
    (incident,) = incidents(store)
    assert incident.state == "triggered" and incident.priority == "P1"
    # The identity maintd computes from the labels is Alertmanager's own fingerprint.
    assert alertmanager.fingerprints()["db1:9100"] == first.fingerprint

    # A second alert changes the group: Alertmanager sends both again, and the first is a repeat.
    alertmanager.post(disk_b)
    wait_for("the second alert", lambda: len(alerts(store)) == 2 and alerts(store)[0].received >= 2)
    a, b = alerts(store)
    assert alertmanager.fingerprints()["db1:9200"] == b.fingerprint
    assert a.id == first.id and a.incident_id == b.incident_id == incident.id
    assert len(incidents(store)) == 1

    # Resolved in Alertmanager (endsAt in the past): it sends them resolved, and the incident resolves.
    ended = (datetime.now(UTC) - timedelta(seconds=1)).isoformat()
    alertmanager.post({**disk_a, "endsAt": ended}, {**disk_b, "endsAt": ended})
    wait_for("the incident to resolve", lambda: incidents(store)[0].state == "resolved")
    assert [(x.id, x.status) for x in alerts(store)] == [(a.id, "resolved"), (b.id, "resolved")]
    assert alerts(store)[0].ends_at is not None
    # And the fingerprint in each webhook it sent was the one maintd computes (else a warning).
    assert "fingerprint" not in caplog.text
