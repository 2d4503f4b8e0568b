"""The review routes and ``maintd review``: who may do what, the checklist, findings, completion."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner, Result

from maintd.cli import app
from maintd.engine import Engine
from maintd.store.db import Store
from tests.personas import as_

AREAS = ["scalability", "security-architecture", "cost", "technical-debt", "performance", "compliance"]
PLAN = """
people:
  - {name: ann, email: ann@example.test}
  - {name: bob, email: bob@example.test}
reviews:
  - {name: architecture, title: Architecture review, owner: ann, participants: [bob]}
  - {name: security, owner: bob, cadence: monthly, areas: [access, {name: secrets, title: Secret rotation}]}
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


def test_viewers_read_and_only_team_leads_record(
    engine: Engine, client: TestClient, tokens: dict[str, str]
) -> None:
    assert client.get("/api/v1/reviews").status_code == 401
    assert (
        client.post("/api/v1/reviews", json={"name": "architecture"}, headers=as_(tokens, "rob")).status_code
        == 403
    )
    made = client.post("/api/v1/reviews", json={"name": "architecture"}, headers=as_(tokens, "tess"))
    assert made.status_code == 201, made.text
    review = made.json()
    assert (review["period"], review["state"], review["owner"]) == ("2026-Q4", "open", "ann")
    assert [i["area"] for i in review["items"]] == AREAS
    url = f"/api/v1/reviews/{review['id']}"
    assert client.get(url, headers=as_(tokens, "vera")).json()["title"] == "Architecture review"
    for who in ("vera", "rob"):
        refused = client.post(f"{url}/areas/cost", json={"notes": "x"}, headers=as_(tokens, who))
        assert refused.status_code == 403
    finding = {"area": "cost", "title": "Right-size the replicas", "owner": "bob", "due_on": "2026-12-15"}
    assert client.post(f"{url}/findings", json=finding, headers=as_(tokens, "rob")).status_code == 403
    assert client.post(f"{url}/complete", headers=as_(tokens, "rob")).status_code == 403


def test_a_team_lead_works_through_the_checklist_and_completes_only_when_every_area_is_reviewed(
    client: TestClient, tokens: dict[str, str]
) -> None:
    lead = as_(tokens, "tess")
    review = client.post(
        "/api/v1/reviews", json={"name": "security", "period": "2026-12"}, headers=lead
    ).json()
    url = f"/api/v1/reviews/{review['id']}"
    assert (review["period"], review["period_end"]) == ("2026-12", "2027-01-01T00:00:00Z")
    again = client.post("/api/v1/reviews", json={"name": "security", "period": "2026-12"}, headers=lead)
    assert again.status_code == 409 and "exists already" in again.json()["detail"]
    bad = client.post("/api/v1/reviews", json={"name": "security", "period": "2026-Q4"}, headers=lead)
    assert bad.status_code == 409 and "write YYYY-MM, e.g. 2026-11" in bad.json()["detail"]
    assert client.post("/api/v1/reviews", json={"name": "nope"}, headers=lead).status_code == 404

    done = client.post(f"{url}/areas/access", json={"notes": "SSO only; 2 stale accounts"}, headers=lead)
    assert done.status_code == 200 and done.json()["items"][0]["reviewed_by"] == "token:tess"
    assert client.post(f"{url}/areas/nope", json={"notes": "x"}, headers=lead).status_code == 404
    refused = client.post(f"{url}/complete", headers=lead)
    assert refused.status_code == 409
    assert "1 area not reviewed: secrets" in refused.json()["detail"]

    finding = {"area": "access", "title": "Remove stale accounts", "owner": "bob", "due_on": "2026-12-01"}
    made = client.post(f"{url}/findings", json=finding, headers=lead)
    assert made.status_code == 201, made.text
    unknown = client.post(f"{url}/findings", json={**finding, "owner": "zoe"}, headers=lead)
    assert unknown.status_code == 409 and "'zoe' is not a person" in unknown.json()["detail"]
    listed = client.get("/api/v1/reviews/findings?status=open", headers=as_(tokens, "vera")).json()
    assert [f["title"] for f in listed] == ["Remove stale accounts"]
    assert client.get("/api/v1/reviews/findings?overdue=true", headers=lead).json() == []

    assert (
        client.post(f"{url}/areas/secrets", json={"notes": "rotated in Nov"}, headers=lead).status_code == 200
    )
    completed = client.post(f"{url}/complete", json={"note": "good month"}, headers=lead)
    assert completed.status_code == 200 and completed.json()["state"] == "complete"
    closed = client.patch(
        f"/api/v1/reviews/findings/{made.json()['id']}", json={"status": "done"}, headers=lead
    )
    assert closed.status_code == 200 and (closed.json()["status"], closed.json()["on_time"]) == ("done", True)
    (brief,) = client.get("/api/v1/reviews?state=complete", headers=lead).json()
    assert (brief["reviewed"], brief["areas"], brief["open_findings"]) == (2, 2, 0)


def test_the_cli_opens_checks_records_findings_and_completes(cli: Callable[..., Result]) -> None:
    opened = cli("review", "start", "architecture", "--period", "2027-Q1")
    assert opened.exit_code == 0, opened.output
    assert "review 1 opened: Architecture review 2027-Q1" in opened.output
    refused = cli("review", "complete", "1")
    assert refused.exit_code == 1
    assert "6 areas not reviewed: scalability, security-architecture, cost" in refused.output
    for area in AREAS:
        assert cli("review", "check", "1", area, "--notes", f"{area}: fine").exit_code == 0
    added = cli("review", "finding", "add", "1", "--area", "performance", "--title", "Cache the plan view",
                "--owner", "bob", "--due", "2027-02-01")  # fmt: skip
    assert added.exit_code == 0 and "finding 1 added: bob, due 2027-02-01" in added.output, added.output
    wrong = cli(
        "review",
        "finding",
        "add",
        "1",
        "--area",
        "ux",
        "--title",
        "x",
        "--owner",
        "bob",
        "--due",
        "2027-02-01",
    )
    assert wrong.exit_code == 1 and "has no area 'ux'" in wrong.output
    assert "review 1 complete" in cli("review", "complete", "1").output
    listed = [json.loads(line) for line in cli("review", "list", "--json").output.splitlines()]
    assert [(r["name"], r["period"], r["state"], r["open_findings"]) for r in listed] == [
        ("architecture", "2027-Q1", "complete", 1)
    ]
    shown = json.loads(cli("review", "show", "1", "--json").output)
    assert shown["items"][0]["reviewed_by"] == "user:olga" and shown["findings"][0]["owner"] == "bob"
    assert "Cache the plan view" in cli("review", "finding", "list", "--owner", "bob").output
    assert "finding 1 done on time" in cli("review", "finding", "done", "1").output
    assert cli("review", "show", "7").exit_code == 1
    bad = cli("review", "start", "architecture", "--period", "2027-02")
    assert bad.exit_code == 1 and "'2027-02' is not a quarterly period" in bad.output
