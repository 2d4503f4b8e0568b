"""The incident, alert and silence routes: who may do what, 404 and 409 problems, silences muting alerts."""

from __future__ import annotations

from datetime import timedelta

import pytest
from fastapi.testclient import TestClient

from maintd.alerts.model import AlertIn, Severity
from maintd.api.app import create_app
from maintd.api.deps import AppContext
from maintd.engine import Engine
from maintd.incidents.pipeline import Delivery, ingest
from tests.personas import as_

PLAN = "incidents: {deadlines: {P0: 5m, P1: 10m, P2: 1h, P3: 1d}}\n"


@pytest.fixture
def engine(store, write_plan, make_engine) -> Engine:  # type: ignore[no-untyped-def]
    engine = make_engine(store, write_plan(PLAN))
    assert engine.reload().ok
    return engine


def fire(engine: Engine, severity: Severity = Severity.critical, **labels: str) -> Delivery:
    labels = {"alertname": "ApiDown", "target": "api", **labels}
    with engine.store.write() as s:
        assert engine.loaded is not None
        (delivery,) = ingest(
            s,
            [AlertIn(source="native", labels=labels, severity=severity, summary="API answers 503")],
            now=engine.clock.now(),
            settings=engine.loaded.plan.incidents,
            actor="test",
        )
        return delivery


def opened(engine: Engine, **kwargs) -> int:  # type: ignore[no-untyped-def]
    delivery = fire(engine, **kwargs)
    assert delivery.incident is not None
    return delivery.incident.id


def test_incident_routes_need_a_token(client):
    for path in ("/api/v1/incidents", "/api/v1/incidents/1", "/api/v1/alerts", "/api/v1/silences"):
        assert client.get(path).status_code == 401
    assert client.post("/api/v1/incidents/1/acknowledge").status_code == 401


def test_a_viewer_lists_and_reads_incidents_with_their_alerts_and_timeline(client, tokens, engine):
    incident_id = opened(engine)
    listed = client.get("/api/v1/incidents", headers=as_(tokens, "vera")).json()
    assert [(i["id"], i["priority"], i["state"], i["title"]) for i in listed] == [
        (incident_id, "P1", "triggered", "API answers 503")
    ]
    assert listed[0]["ack_deadline"].startswith("2026-11-27T01:10:00")  # the plan's P1 deadline
    one = client.get(f"/api/v1/incidents/{incident_id}", headers=as_(tokens, "vera")).json()
    assert [a["labels"]["alertname"] for a in one["alerts"]] == ["ApiDown"]
    assert [e["kind"] for e in one["timeline"]] == ["incident.opened", "alert.firing"]


def test_the_list_filters_by_state_and_priority(client, tokens, engine):
    p1 = opened(engine)
    p3 = opened(engine, severity=Severity.warning, target="web")
    headers = as_(tokens, "vera")
    assert [i["id"] for i in client.get("/api/v1/incidents", headers=headers).json()] == [p3, p1]
    assert [i["id"] for i in client.get("/api/v1/incidents?priority=P3", headers=headers).json()] == [p3]
    client.post(f"/api/v1/incidents/{p3}/resolve", headers=as_(tokens, "rob"))
    assert [i["id"] for i in client.get("/api/v1/incidents?state=open", headers=headers).json()] == [p1]
    assert [i["id"] for i in client.get("/api/v1/incidents?state=resolved", headers=headers).json()] == [p3]
    response = client.get("/api/v1/incidents?state=asleep&priority=P9", headers=headers)
    assert response.status_code == 422
    assert {e["field"] for e in response.json()["errors"]} == {"query.state", "query.priority"}


def test_a_viewer_may_not_acknowledge(client, tokens, engine):
    incident_id = opened(engine)
    response = client.post(f"/api/v1/incidents/{incident_id}/acknowledge", headers=as_(tokens, "vera"))
    assert response.status_code == 403
    assert "responder" in response.json()["detail"]


def test_a_responder_acknowledges_with_a_note_and_a_second_acknowledgement_conflicts(client, tokens, engine):
    incident_id = opened(engine)
    url = f"/api/v1/incidents/{incident_id}/acknowledge"
    response = client.post(url, json={"note": "on it"}, headers=as_(tokens, "rob"))
    assert response.status_code == 200
    assert (response.json()["state"], response.json()["acknowledged_at"] is not None) == (
        "acknowledged",
        True,
    )
    again = client.post(url, headers=as_(tokens, "rob"))
    assert again.status_code == 409
    assert again.headers["content-type"] == "application/problem+json"
    assert again.json()["title"] == "Conflict"
    assert again.json()["detail"].startswith(f"incident {incident_id} is acknowledged; it can go to")
    timeline = client.get(f"/api/v1/incidents/{incident_id}", headers=as_(tokens, "vera")).json()["timeline"]
    ack = timeline[-1]
    assert (ack["kind"], ack["actor"], ack["payload"]["note"]) == (
        "incident.acknowledged",
        "token:rob",
        "on it",
    )


def test_mitigate_resolve_and_reopen(client, tokens, engine):
    incident_id = opened(engine)
    headers = as_(tokens, "rob")
    for verb, state in (("mitigate", "mitigated"), ("resolve", "resolved"), ("reopen", "triggered")):
        response = client.post(
            f"/api/v1/incidents/{incident_id}/{verb}", json={"note": verb}, headers=headers
        )
        assert (response.status_code, response.json()["state"]) == (200, state)


def test_an_unknown_incident_is_404_everywhere(client, tokens):
    headers = as_(tokens, "mia")
    assert client.get("/api/v1/incidents/999", headers=headers).status_code == 404
    for verb in ("acknowledge", "mitigate", "resolve", "reopen", "close"):
        response = client.post(f"/api/v1/incidents/999/{verb}", headers=headers)
        assert (response.status_code, response.json()["detail"]) == (404, "no incident 999")
    assert (
        client.post("/api/v1/incidents/999/assign", json={"assignee": "rob"}, headers=headers).status_code
        == 404
    )
    assert client.post("/api/v1/incidents/999/notes", json={"note": "x"}, headers=headers).status_code == 404
    assert (
        client.post("/api/v1/incidents/999/priority", json={"priority": "P0"}, headers=headers).status_code
        == 404
    )


def test_closing_a_p1_needs_its_post_mortem_or_a_manager_waiving_it(client, tokens, engine):
    incident_id = opened(engine)
    url = f"/api/v1/incidents/{incident_id}/close"
    client.post(f"/api/v1/incidents/{incident_id}/resolve", headers=as_(tokens, "rob"))
    refused = client.post(url, headers=as_(tokens, "rob"))
    assert refused.status_code == 409
    assert "post-mortem is required" in refused.json()["detail"]
    waive = {"waive_postmortem": True, "note": "a test page, nothing to learn"}
    not_allowed = client.post(url, json=waive, headers=as_(tokens, "tess"))
    assert not_allowed.status_code == 403
    assert "manager" in not_allowed.json()["detail"]
    no_reason = client.post(url, json={"waive_postmortem": True}, headers=as_(tokens, "mia"))
    assert no_reason.status_code == 409
    closed = client.post(url, json=waive, headers=as_(tokens, "mia"))
    assert (closed.status_code, closed.json()["state"]) == (200, "closed")
    last = client.get(f"/api/v1/incidents/{incident_id}", headers=as_(tokens, "vera")).json()["timeline"][-1]
    assert (last["kind"], last["actor"], last["payload"]["postmortem_waived"]) == (
        "incident.closed",
        "token:mia",
        True,
    )


def test_a_responder_assigns_and_adds_notes(client, tokens, engine):
    incident_id = opened(engine)
    headers = as_(tokens, "rob")
    assigned = client.post(
        f"/api/v1/incidents/{incident_id}/assign", json={"assignee": "rob"}, headers=headers
    )
    assert assigned.json()["assignee"] == "rob"
    note = client.post(
        f"/api/v1/incidents/{incident_id}/notes", json={"note": "restarted api-2"}, headers=headers
    )
    assert note.status_code == 200
    empty = client.post(f"/api/v1/incidents/{incident_id}/notes", json={"note": ""}, headers=headers)
    assert empty.status_code == 422
    unknown_field = client.post(
        f"/api/v1/incidents/{incident_id}/notes", json={"note": "x", "colour": "red"}, headers=headers
    )
    assert unknown_field.status_code == 422
    kinds = [
        e["kind"] for e in client.get(f"/api/v1/incidents/{incident_id}", headers=headers).json()["timeline"]
    ]
    assert kinds[-2:] == ["incident.assigned", "incident.note"]


def test_changing_the_priority_needs_a_team_lead_and_moves_the_deadline(client, tokens, engine):
    incident_id = opened(engine, severity=Severity.warning)  # P3: 1 day
    url = f"/api/v1/incidents/{incident_id}/priority"
    assert client.post(url, json={"priority": "P0"}, headers=as_(tokens, "rob")).status_code == 403
    response = client.post(url, json={"priority": "P0", "note": "all regions"}, headers=as_(tokens, "tess"))
    assert response.status_code == 200
    body = response.json()
    assert (body["priority"], body["postmortem_required"]) == ("P0", True)
    assert body["ack_deadline"].startswith("2026-11-27T01:05:00")  # opened at 01:00, the plan's P0: 5m
    same = client.post(url, json={"priority": "P0"}, headers=as_(tokens, "tess"))
    assert same.status_code == 409


def test_alerts_list_filters_by_status_incident_and_fingerprint(client, tokens, engine):
    first = fire(engine)
    second = fire(engine, target="web")
    headers = as_(tokens, "vera")
    assert [a["id"] for a in client.get("/api/v1/alerts", headers=headers).json()] == [
        second.row.id,
        first.row.id,
    ]
    assert first.incident is not None and first.row is not None
    by_incident = client.get(f"/api/v1/alerts?incident={first.incident.id}", headers=headers).json()
    assert [a["id"] for a in by_incident] == [first.row.id]
    by_fp = client.get(f"/api/v1/alerts?fingerprint={first.row.fingerprint}", headers=headers).json()
    assert [a["id"] for a in by_fp] == [first.row.id]
    assert client.get("/api/v1/alerts?status=resolved", headers=headers).json() == []
    assert client.get("/api/v1/alerts?status=sleeping", headers=headers).status_code == 422


def test_a_silence_made_through_the_api_mutes_matching_alerts_until_it_is_expired(client, tokens, engine):
    body = {"matchers": ["target=api", "alertname=~Api.*"], "duration": "2h", "comment": "deploying the API"}
    assert client.post("/api/v1/silences", json=body, headers=as_(tokens, "vera")).status_code == 403
    created = client.post("/api/v1/silences", json=body, headers=as_(tokens, "rob"))
    assert created.status_code == 201
    silence = created.json()
    assert (silence["state"], silence["created_by"], silence["matchers"]) == (
        "active",
        "token:rob",
        ["target=api", "alertname=~Api.*"],
    )
    assert silence["ends_at"].startswith("2026-11-27T03:00:00")

    muted = fire(engine)
    assert muted.outcome == "muted" and muted.incident is None
    alert = client.get("/api/v1/alerts", headers=as_(tokens, "vera")).json()[0]
    assert (alert["muted_by"], alert["incident_id"]) == (f"silence:{silence['id']}", None)
    assert client.get("/api/v1/incidents", headers=as_(tokens, "vera")).json() == []
    assert opened(engine, target="web")  # other labels: not silenced

    listed = client.get("/api/v1/silences", headers=as_(tokens, "vera")).json()
    assert [s["id"] for s in listed] == [silence["id"]]
    expired = client.delete(f"/api/v1/silences/{silence['id']}", headers=as_(tokens, "rob"))
    assert (expired.status_code, expired.json()["state"]) == (200, "expired")
    assert client.get("/api/v1/silences", headers=as_(tokens, "vera")).json() == []
    everything = client.get("/api/v1/silences?all=true", headers=as_(tokens, "vera")).json()
    assert [s["state"] for s in everything] == ["expired"]

    engine.clock.advance(timedelta(seconds=1))
    assert opened(engine, target="api2", alertname="ApiSlow")
    assert client.delete("/api/v1/silences/999", headers=as_(tokens, "rob")).status_code == 404


def test_a_silence_can_start_later_and_end_at_a_time(client, tokens):
    body = {
        "matchers": ["service=payments"],
        "starts_at": "2026-11-27T02:00:00Z",
        "ends_at": "2026-11-27T03:00:00",  # no offset: UTC
        "comment": "maintenance window",
    }
    silence = client.post("/api/v1/silences", json=body, headers=as_(tokens, "rob")).json()
    assert silence["state"] == "pending"
    assert silence["ends_at"].startswith("2026-11-27T03:00:00")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"matchers": ["target"], "duration": "1h", "comment": "x"}, "body.matchers"),
        ({"matchers": ["job=~("], "duration": "1h", "comment": "x"}, "body.matchers"),
        ({"matchers": [], "duration": "1h", "comment": "x"}, "body.matchers"),
        ({"matchers": ["a=b"], "duration": "1h"}, "body.comment"),
        ({"matchers": ["a=b"], "comment": "x"}, "body"),
        ({"matchers": ["a=b"], "duration": "1h", "ends_at": "2026-11-28T00:00:00Z", "comment": "x"}, "body"),
    ],
)
def test_a_bad_silence_is_refused_naming_the_field(client, tokens, body, field):
    response = client.post("/api/v1/silences", json=body, headers=as_(tokens, "rob"))
    assert response.status_code == 422
    assert field in {e["field"] for e in response.json()["errors"]}


def test_a_silence_ending_before_it_starts_is_refused(client, tokens):
    body = {"matchers": ["a=b"], "ends_at": "2026-11-26T00:00:00Z", "comment": "x"}
    response = client.post("/api/v1/silences", json=body, headers=as_(tokens, "rob"))
    assert response.status_code == 422
    assert response.json()["detail"] == "a silence must end after it starts"


def test_the_routes_use_the_stored_plans_settings_without_a_scheduler(store, engine, tokens):
    incident_id = opened(engine, severity=Severity.warning)
    app = create_app(AppContext(store, engine.clock, engine.metrics))  # no engine: an API-only process
    with TestClient(app) as c:
        response = c.post(
            f"/api/v1/incidents/{incident_id}/priority", json={"priority": "P1"}, headers=as_(tokens, "tess")
        )
    assert response.json()["ack_deadline"].startswith("2026-11-27T01:10:00")  # the stored plan's P1: 10m
