"""PagerDuty's Events API v2 at /v2/enqueue: its documented events, answers and dedup rules.

The events below are PagerDuty's documented examples (developer.pagerduty.com, Events API v2),
with the routing key of a maintd integration of kind pagerduty.
"""

from __future__ import annotations

import json
import re

import pytest

from maintd.alerts.integrations import IntegrationKind, disable_integration
from maintd.api.ingest import PAGERDUTY_MAX_BODY
from maintd.engine import Engine
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

EXAMPLE = {
    "payload": {
        "summary": "DISK at 99% on machine prod-datapipe03.example.com",
        "timestamp": "2015-07-17T08:42:58.315+0000",
        "severity": "critical",
        "source": "prod-datapipe03.example.com",
        "component": "mysql",
        "group": "prod-datapipe",
        "class": "disk",
        "custom_details": {"free space": "1%", "ping time": "1500ms", "load avg": 0.75},
    },
    "dedup_key": "srv01/mysql",
    "event_action": "trigger",
    "client": "Sample Monitoring Service",
    "client_url": "https://monitoring.service.com",
    "links": [{"href": "http://pagerduty.example.com", "text": "An example link."}],
    "images": [{"src": "https://chart.example.com/x.png", "href": "https://example.com", "alt": "A chart"}],
}


@pytest.fixture
def engine(store, write_plan, make_engine) -> Engine:  # type: ignore[no-untyped-def]
    engine = make_engine(store, write_plan(PLAN))
    assert engine.reload().ok
    return engine


@pytest.fixture
def keys(engine) -> dict[str, str]:  # type: ignore[no-untyped-def]
    return make_integrations(
        engine, pd=IntegrationKind.pagerduty, pd2=IntegrationKind.pagerduty, am=IntegrationKind.alertmanager
    )


@pytest.fixture
def send(engine, keys):  # type: ignore[no-untyped-def]
    """send(action, via="pd", **fields) → the response to one event."""
    with client_for(engine) as client:

        def post(action: str, via: str = "pd", **fields: object):  # type: ignore[no-untyped-def]
            body = {**EXAMPLE, "event_action": action, **fields, "routing_key": keys.get(via, via)}
            return client.post("/v2/enqueue", json=body)

        post.client = client  # type: ignore[attr-defined]
        yield post


def test_the_documented_trigger_opens_an_alert_and_an_incident(send, engine):
    response = send("trigger")
    assert response.status_code == 202
    assert response.json() == {"status": "success", "message": "Event processed", "dedup_key": "srv01/mysql"}
    (row,) = alerts(engine.store)
    assert (row.source, row.integration, row.severity, row.status) == (
        "pagerduty",
        "pd",
        "critical",
        "firing",
    )
    assert row.summary == "DISK at 99% on machine prod-datapipe03.example.com"
    assert row.labels == {
        "alertname": "disk",
        "target": "prod-datapipe03.example.com",
        "source": "prod-datapipe03.example.com",
        "severity": "critical",
        "component": "mysql",
        "group": "prod-datapipe",
        "class": "disk",
        "dedup_key": "srv01/mysql",
    }
    assert json.loads(row.annotations["custom_details"])["load avg"] == 0.75
    assert row.annotations["client_url"] == "https://monitoring.service.com"
    assert json.loads(row.annotations["links"])[0]["href"] == "http://pagerduty.example.com"
    assert row.starts_at.isoformat() == "2015-07-17T08:42:58.315000+00:00"
    (incident,) = incidents(engine.store)
    assert (incident.priority, incident.state) == ("P1", "triggered")


def test_a_trigger_without_dedup_key_gets_one_to_use_for_follow_ups(send, keys, engine):
    body = {k: v for k, v in EXAMPLE.items() if k != "dedup_key"}
    response = send.client.post("/v2/enqueue", json={**body, "routing_key": keys["pd"]})
    assert response.status_code == 202
    key = response.json()["dedup_key"]
    assert re.fullmatch(r"[0-9a-f]{32}", key)
    assert send("resolve", dedup_key=key).status_code == 202
    (row,) = alerts(engine.store)
    assert row.status == "resolved"


def test_a_repeated_trigger_is_the_same_alert(send, engine):
    send("trigger")
    send("trigger", payload={**EXAMPLE["payload"], "summary": "DISK at 100%"})
    (row,) = alerts(engine.store)
    assert row.received == 2 and row.summary == "DISK at 100%"
    assert len(incidents(engine.store)) == 1


def test_acknowledge_acknowledges_the_alert_and_its_incident(send, engine):
    send("trigger")
    engine.clock.advance(60)
    assert send("acknowledge", payload=None).status_code == 202
    (row,) = alerts(engine.store)
    assert row.acknowledged_at == engine.clock.now() and row.status == "firing"
    (incident,) = incidents(engine.store)
    assert incident.state == "acknowledged"
    send("trigger")  # a trigger while acknowledged stays the same, acknowledged alert
    assert [(a.id, a.received) for a in alerts(engine.store)] == [(row.id, 3)]
    assert incidents(engine.store)[0].state == "acknowledged"


def test_resolve_resolves_the_alert_and_its_incident(send, engine):
    send("trigger")
    assert send("resolve", payload=None).status_code == 202
    (row,) = alerts(engine.store)
    assert row.status == "resolved"
    assert incidents(engine.store)[0].state == "resolved"


def test_a_trigger_after_resolve_opens_a_new_alert(send, engine):
    send("trigger")
    send("resolve")
    engine.clock.advance(60)
    send("trigger")
    first, second = alerts(engine.store)
    assert (first.status, second.status) == ("resolved", "firing")
    assert first.labels["dedup_key"] == second.labels["dedup_key"] == "srv01/mysql"
    assert [i.state for i in incidents(engine.store)] == ["resolved", "triggered"]


@pytest.mark.parametrize("action", ["acknowledge", "resolve"])
def test_a_follow_up_with_nothing_open_is_accepted_and_dropped(send, engine, action):
    response = send(action, dedup_key="never-triggered")
    assert response.status_code == 202
    assert response.json()["dedup_key"] == "never-triggered"
    assert alert_count(engine.store) == 0
    assert metric(send.client, "pagerduty", "dropped") == 1


def test_follow_ups_under_another_routing_key_are_dropped(send, engine):
    send("trigger", via="pd")
    assert send("resolve", via="pd2").status_code == 202
    assert send("acknowledge", via="pd2").status_code == 202
    (row,) = alerts(engine.store)
    assert (row.status, row.acknowledged_at) == ("firing", None)
    send("trigger", via="pd2")  # the same dedup_key elsewhere is another alert
    assert [a.integration for a in alerts(engine.store)] == ["pd", "pd2"]


def test_the_longest_dedup_key_works_under_a_long_integration_name(send, engine):
    (key,) = make_integrations(engine, **{"p" * 63: IntegrationKind.pagerduty}).values()
    dedup = "k" * 255
    body = {**EXAMPLE, "dedup_key": dedup, "routing_key": key}
    assert send.client.post("/v2/enqueue", json=body).status_code == 202
    body = {**body, "event_action": "resolve"}
    assert send.client.post("/v2/enqueue", json=body).json()["dedup_key"] == dedup
    (row,) = alerts(engine.store)
    assert row.status == "resolved" and row.labels["dedup_key"] == dedup


def test_unknown_fields_are_ignored_as_pagerduty_does(send):
    assert (
        send("trigger", severity_override="x", payload={**EXAMPLE["payload"], "extra": 1}).status_code == 202
    )


INVALID = [
    # (what, fields to change (None removes), words in an error)
    ("no routing key", {"routing_key": None}, "routing_key: Field required"),
    ("an unknown routing key", {"routing_key": "0" * 32}, "routing_key: unknown or disabled integration key"),
    ("an Alertmanager key", {"routing_key": "am"}, "routing_key: this key belongs to the alertmanager"),
    ("an unknown action", {"event_action": "escalate"}, "event_action: Input should be 'trigger'"),
    ("a trigger without payload", {"payload": None}, "payload is required for a trigger event"),
    ("no summary", {"payload": {"source": "h", "severity": "info"}}, "payload.summary: Field required"),
    ("no source", {"payload": {"summary": "s", "severity": "info"}}, "payload.source: Field required"),
    ("no severity", {"payload": {"summary": "s", "source": "h"}}, "payload.severity: Field required"),
    (
        "a severity not PagerDuty's",
        {"payload": {"summary": "s", "source": "h", "severity": "fatal"}},
        "payload.severity: Input should be 'critical'",
    ),
    (
        "a control character in the source",
        {"payload": {"summary": "s", "source": "h\u0007", "severity": "info"}},
        "payload.source: 'h\\x07' contains a control character",
    ),
    ("a dedup_key too long", {"dedup_key": "k" * 256}, "dedup_key: String should have at most 255"),
    ("a bad timestamp", {"payload": {**EXAMPLE["payload"], "timestamp": "yesterday"}}, "payload.timestamp"),
]


@pytest.mark.parametrize(("what", "change", "words"), INVALID, ids=[i[0] for i in INVALID])
def test_an_invalid_event_gets_pagerdutys_400_naming_the_problem(send, keys, engine, what, change, words):
    send("trigger", dedup_key="kept")
    body = {**EXAMPLE, "routing_key": keys["pd"]}
    for name, value in change.items():
        if value is None:
            body.pop(name)
        else:
            body[name] = keys.get(value, value) if isinstance(value, str) else value
    response = send.client.post("/v2/enqueue", json=body)
    assert response.status_code == 400, response.text
    answer = response.json()
    assert answer["status"] == "invalid event" and answer["message"] == "Event object is invalid"
    assert any(words in e for e in answer["errors"]), answer
    assert [a.labels["dedup_key"] for a in alerts(engine.store)] == ["kept"]


def test_follow_ups_need_a_dedup_key(send, keys):
    body = {"routing_key": keys["pd"], "event_action": "resolve"}
    answer = send.client.post("/v2/enqueue", json=body).json()
    assert answer["errors"] == ["dedup_key is required to resolve an alert"]


@pytest.mark.parametrize(
    ("content", "content_type", "words"),
    [
        (b'{"routing_key": ', "application/json", "the body is not valid JSON"),
        (b"", "application/json", "the body is empty"),
        (b"routing_key=x", "application/x-www-form-urlencoded", "send Content-Type: application/json"),
        (b"[]", "application/json", "Input should be a valid dictionary"),
    ],
)
def test_a_body_that_is_not_an_event_gets_400(send, content, content_type, words):
    response = send.client.post("/v2/enqueue", content=content, headers={"Content-Type": content_type})
    assert response.status_code == 400
    assert any(words in e for e in response.json()["errors"]), response.json()


def test_a_disabled_integrations_key_is_refused(send, engine):
    with engine.store.write() as s:
        disable_integration(s, name="pd", now=engine.clock.now(), actor="test")
    response = send("trigger")
    assert response.status_code == 400
    assert "unknown or disabled" in response.json()["errors"][0]


def test_an_event_over_512_kb_is_refused_with_413(send, keys, engine):
    body = {**EXAMPLE, "routing_key": keys["pd"]}
    body["payload"] = {**EXAMPLE["payload"], "custom_details": {"blob": "x" * PAGERDUTY_MAX_BODY}}
    data = json.dumps(body).encode()
    for content in (data, chunks(data)):
        response = send.client.post(
            "/v2/enqueue", content=content, headers={"Content-Type": "application/json"}
        )
        assert response.status_code == 413
        assert response.json()["status"] == "request too large"
    assert alert_count(engine.store) == 0


def test_a_sender_over_its_rate_gets_429(store, write_plan, make_engine):
    engine = make_engine(store, write_plan(PLAN), ingest_rate=1, ingest_burst=1)
    assert engine.reload().ok
    (key,) = make_integrations(engine, pd=IntegrationKind.pagerduty).values()
    with client_for(engine) as client:
        assert client.post("/v2/enqueue", json={**EXAMPLE, "routing_key": key}).status_code == 202
        limited = client.post("/v2/enqueue", json={**EXAMPLE, "routing_key": key})
        assert limited.status_code == 429
        assert limited.headers["retry-after"] == "1"
        assert limited.json()["status"] == "throttle event"
        engine.clock.advance(1)
        assert client.post("/v2/enqueue", json={**EXAMPLE, "routing_key": key}).status_code == 202
    assert alerts(store)[0].received == 2
