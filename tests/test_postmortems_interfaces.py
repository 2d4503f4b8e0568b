"""The post-mortem routes and ``maintd postmortem``: who may do what, edits, Markdown, action items."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner, Result

from maintd.alerts.model import AlertIn, Severity
from maintd.cli import app
from maintd.engine import Engine
from maintd.incidents import service as incidents
from maintd.incidents.pipeline import ingest
from maintd.store.db import Store
from tests.personas import as_

PLAN = """
people:
  - {name: ann, email: ann@example.test}
  - {name: bob, email: bob@example.test}
"""


@pytest.fixture
def engine(store: Store, write_plan: Callable[..., Path], make_engine: Callable[..., Engine]) -> Engine:
    engine = make_engine(store, write_plan(PLAN))
    assert engine.reload().ok
    return engine


@pytest.fixture
def cli(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> Callable[..., Result]:
    monkeypatch.setenv("MAINTD_DATABASE_URL", engine.store.url)
    monkeypatch.setenv("USER", "olga")
    monkeypatch.setenv("LOGNAME", "olga")
    return lambda *args: CliRunner().invoke(app, list(args), catch_exceptions=False)


def resolved(engine: Engine, severity: Severity = Severity.critical) -> int:
    assert engine.loaded is not None
    settings = engine.loaded.plan.incidents
    alert = AlertIn(source="native", labels={"alertname": "ApiDown"}, severity=severity, summary="API down")
    now = engine.clock.now()
    with engine.store.write() as s:
        (delivery,) = ingest(s, [alert], now=now, settings=settings, actor="test")
        assert delivery.incident is not None
        incidents.resolve(s, incident_id=delivery.incident.id, actor="test", now=now, settings=settings)
        return delivery.incident.id


def test_the_routes_need_a_token_and_the_right_role(
    engine: Engine, client: TestClient, tokens: dict[str, str]
) -> None:
    incident_id = resolved(engine)
    url = f"/api/v1/postmortems/{incident_id}"
    assert client.get(url).status_code == 401
    assert client.get(url, headers=as_(tokens, "vera")).status_code == 200
    assert client.patch(url, json={"summary": "x"}, headers=as_(tokens, "vera")).status_code == 403
    assert client.post(f"{url}/review", headers=as_(tokens, "rob")).status_code == 200
    refused = client.post(f"{url}/complete", headers=as_(tokens, "rob"))
    assert refused.status_code == 403 and "team-lead" in refused.json()["detail"]
    assert client.get("/api/v1/postmortems/999", headers=as_(tokens, "vera")).status_code == 404


def test_a_responder_edits_and_a_team_lead_completes_then_the_incident_closes(
    engine: Engine, client: TestClient, tokens: dict[str, str]
) -> None:
    incident_id = resolved(engine)
    url = f"/api/v1/postmortems/{incident_id}"
    body = client.get(url, headers=as_(tokens, "vera")).json()
    assert (body["state"], body["severity"], body["alert_triggered_at"][:16]) == (
        "draft",
        "P1 (critical)",
        "2026-11-27T01:00",
    )
    close = f"/api/v1/incidents/{incident_id}/close"
    assert client.post(close, headers=as_(tokens, "rob")).status_code == 409
    edit = {
        "what_happened": "Pool exhausted.",
        "why_it_happened": "Leak.",
        "root_cause_identified_at": "2026-11-27T01:30:00Z",
    }
    edited = client.patch(url, json=edit, headers=as_(tokens, "rob"))
    assert edited.status_code == 200, edited.text
    assert (edited.json()["what_happened"], edited.json()["root_cause_identified_at"][:16]) == (
        "Pool exhausted.",
        "2026-11-27T01:30",
    )
    unknown = client.patch(url, json={"blame": "bob"}, headers=as_(tokens, "rob"))
    assert unknown.status_code == 422  # blameless, and strict about fields
    early = client.post(f"{url}/complete", headers=as_(tokens, "tess"))
    assert early.status_code == 409 and "it can go to in_review, not complete" in early.json()["detail"]
    assert client.post(f"{url}/review", headers=as_(tokens, "rob")).json()["state"] == "in_review"
    done = client.post(f"{url}/complete", json={"note": "reviewed Monday"}, headers=as_(tokens, "tess"))
    assert done.status_code == 200 and done.json()["completed_by"] == "token:tess"
    assert client.patch(url, json={"summary": "x"}, headers=as_(tokens, "rob")).status_code == 409
    assert client.post(close, headers=as_(tokens, "rob")).json()["state"] == "closed"
    listed = client.get("/api/v1/postmortems?state=complete", headers=as_(tokens, "vera")).json()
    assert [p["incident_id"] for p in listed] == [incident_id]


def test_action_items_through_the_api_and_the_markdown(
    engine: Engine, client: TestClient, tokens: dict[str, str]
) -> None:
    incident_id = resolved(engine)
    url = f"/api/v1/postmortems/{incident_id}"
    item = {"title": "Alert on pool use", "owner": "ann", "due_on": "2026-12-04"}
    added = client.post(f"{url}/actions", json=item, headers=as_(tokens, "rob"))
    assert added.status_code == 201, added.text
    action_id = added.json()["id"]
    stranger = client.post(f"{url}/actions", json={**item, "owner": "zed"}, headers=as_(tokens, "rob"))
    assert (
        stranger.status_code == 409
        and "'zed' is not a person of the active plan" in stranger.json()["detail"]
    )
    moved = client.patch(f"{url}/actions/{action_id}", json={"owner": "bob"}, headers=as_(tokens, "rob"))
    assert moved.json()["owner"] == "bob"
    assert (
        client.patch(
            f"/api/v1/postmortems/999/actions/{action_id}", json={"owner": "ann"}, headers=as_(tokens, "rob")
        ).status_code
        == 404
    )
    done = client.patch(
        f"{url}/actions/{action_id}", json={"status": "done"}, headers=as_(tokens, "rob")
    ).json()
    assert (done["status"], done["on_time"]) == ("done", True)
    assert [
        a["id"]
        for a in client.get("/api/v1/postmortem-actions?status=done", headers=as_(tokens, "vera")).json()
    ] == [action_id]
    markdown = client.get(f"{url}/markdown", headers=as_(tokens, "vera"))
    assert markdown.headers["content-type"].startswith("text/markdown")
    assert markdown.text.startswith(f"# Incident Post-Mortem: {incident_id} API down\n")
    assert "1. [bob] Alert on pool use [2026-12-04] (done 2026-11-27 01:00 UTC, on time)" in markdown.text


def test_a_p3_has_no_post_mortem_until_someone_drafts_one(
    engine: Engine, client: TestClient, tokens: dict[str, str]
) -> None:
    incident_id = resolved(engine, Severity.warning)
    url = f"/api/v1/postmortems/{incident_id}"
    assert client.get(url, headers=as_(tokens, "vera")).status_code == 404
    assert client.post(url, headers=as_(tokens, "rob")).status_code == 201
    assert client.post(url, headers=as_(tokens, "rob")).status_code == 409


def test_the_cli_shows_edits_reviews_completes_and_tracks_actions(
    engine: Engine, cli: Callable[..., Result], tmp_path: Path
) -> None:
    incident_id = str(resolved(engine))
    shown = cli("postmortem", "show", incident_id)
    assert (
        shown.exit_code == 0
        and "## Root Cause Analysis" in shown.output
        and "- Severity: P1 (critical)" in shown.output
    )
    edited = cli(
        "postmortem",
        "edit",
        incident_id,
        "what_happened=Pool exhausted.",
        "fix_implemented_at=2026-11-27T01:20",
    )
    assert edited.exit_code == 0, edited.output
    sections = tmp_path / "pm.yaml"
    sections.write_text("why_it_happened: |\n  A leak in the retry path.\nlessons_learned: Watch the pool.\n")
    assert cli("postmortem", "edit", incident_id, "--file", str(sections)).exit_code == 0
    wrong = cli("postmortem", "edit", incident_id, "blame=bob")
    assert wrong.exit_code == 1 and "blame" in wrong.output
    body: dict[str, Any] = json.loads(cli("postmortem", "show", incident_id, "--json").output)
    assert (body["what_happened"], body["why_it_happened"], body["fix_implemented_at"][:16]) == (
        "Pool exhausted.",
        "A leak in the retry path.",
        "2026-11-27T01:20",
    )
    added = cli(
        "postmortem",
        "action",
        "add",
        incident_id,
        "--title",
        "Alert on pool use",
        "--owner",
        "ann",
        "--due",
        "2099-01-01",
    )
    assert added.exit_code == 0, added.output
    action_id = added.output.split()[1]
    assert (
        cli(
            "postmortem", "action", "add", incident_id, "-t", "x", "-o", "zed", "--due", "2099-01-01"
        ).exit_code
        == 1
    )
    listed = cli("postmortem", "action", "list", "--status", "open")
    assert "Alert on pool use" in listed.output and "2099-01-01" in listed.output
    done = cli("postmortem", "action", "done", action_id)
    assert done.exit_code == 0 and "done on time" in done.output
    assert cli("postmortem", "complete", incident_id).exit_code == 1  # a draft: review first
    assert "in_review" in cli("postmortem", "review", incident_id).output
    assert "complete" in cli("postmortem", "complete", incident_id, "--note", "reviewed").output
    assert "closed" in cli("incident", "close", incident_id).output
    assert incident_id in cli("postmortem", "list").output


def test_resolving_a_p1_through_the_api_drafts_its_post_mortem_and_a_p3_none(
    engine: Engine, client: TestClient, tokens: dict[str, str]
) -> None:
    drafted = []
    for severity in (Severity.critical, Severity.warning):
        alert = {
            "labels": {"alertname": f"Down{severity.value}"},
            "severity": severity.value,
            "summary": "down",
        }
        accepted = client.post("/api/v1/alerts", json=[alert], headers=as_(tokens, "rob")).json()
        incident_id = accepted["alerts"][0]["incident_id"]
        resolved = client.post(f"/api/v1/incidents/{incident_id}/resolve", headers=as_(tokens, "rob"))
        assert resolved.json()["state"] == "resolved"
        found = client.get(f"/api/v1/postmortems/{incident_id}", headers=as_(tokens, "vera"))
        drafted.append((found.status_code, found.json().get("state")))
    assert drafted == [(200, "draft"), (404, None)]
