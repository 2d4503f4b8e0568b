"""The lifecycle's API routes (roles: viewers read, responders record reviews and completions, team
leads move components) and CLI commands (audited as the user at the keyboard)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from typer.testing import CliRunner, Result

from maintd.cli import app
from maintd.engine import Engine
from maintd.store.db import Store
from maintd.store.models import EventRow
from tests.personas import as_
from tests.test_lifecycle import PLAN


@pytest.fixture
def engine(
    sqlite_store: Store, write_plan: Callable[..., Path], make_engine: Callable[..., Engine]
) -> Engine:
    engine = make_engine(sqlite_store, write_plan(PLAN))
    assert engine.reload().ok, engine.last_reload
    return engine


@pytest.fixture
def cli(engine: Engine, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Callable[..., Result]:
    """The CLI on the engine's database, at 2026-11-27 02:00 UTC (an hour after the plan loaded)."""
    (tmp_path / "clock").write_text("2026-11-27T02:00:00+00:00")
    monkeypatch.setenv("MAINTD_CLOCK", f"file:{tmp_path / 'clock'}")
    monkeypatch.setenv("MAINTD_DATABASE_URL", engine.store.url)
    monkeypatch.setenv("USER", "olga")
    monkeypatch.setenv("LOGNAME", "olga")
    return lambda *args: CliRunner().invoke(app, list(args), catch_exceptions=False)


def events(engine: Engine, kind: str) -> list[EventRow]:
    with engine.store.read() as s:
        return list(s.scalars(select(EventRow).where(EventRow.kind == kind).order_by(EventRow.id)))


def test_viewers_read_responders_record_reviews_and_completions_team_leads_move_components(
    engine: Engine, client: TestClient, tokens: dict[str, str]
) -> None:
    assert client.get("/api/v1/docs").status_code == 401
    docs = client.get("/api/v1/docs", headers=as_(tokens, "vera")).json()
    assert [(d["name"], d["cadence"], d["stale_since"]) for d in docs] == [
        ("api-runbook", "weekly", None),
        ("arch", "monthly", None),
    ]
    review = "/api/v1/docs/api-runbook/reviewed"
    assert client.post(review, headers=as_(tokens, "vera")).status_code == 403
    done = client.post(review, json={"note": "steps checked"}, headers=as_(tokens, "rob"))
    assert done.status_code == 200 and done.json()["next_due"] == "2026-12-04T01:00:00Z"
    assert client.post("/api/v1/docs/nope/reviewed", headers=as_(tokens, "rob")).status_code == 404

    engine.clock.advance(3600)  # type: ignore[attr-defined]
    move = "/api/v1/lifecycle/components/pg/transition"
    assert client.post(move, json={"to": "maintenance"}, headers=as_(tokens, "rob")).status_code == 403
    refused = client.post(move, json={"to": "retirement"}, headers=as_(tokens, "tess"))
    assert (
        refused.status_code == 409
        and "production → retirement is not a lifecycle step" in refused.json()["detail"]
    )
    moved = client.post(move, json={"to": "maintenance", "note": "freeze"}, headers=as_(tokens, "tess"))
    assert moved.status_code == 200 and moved.json()["stage"] == "maintenance"
    stale = client.get("/api/v1/docs/stale", headers=as_(tokens, "vera")).json()
    assert [(d["name"], d["stale_cause"]) for d in stale] == [
        ("arch", "component pg: production → maintenance, version 16.0")
    ]

    completion = {"person": "ann", "training": "incident-response", "completed_on": "2026-11-20"}
    assert (
        client.post("/api/v1/training/completions", json=completion, headers=as_(tokens, "vera")).status_code
        == 403
    )
    made = client.post("/api/v1/training/completions", json=completion, headers=as_(tokens, "rob"))
    assert made.status_code == 201 and made.json()["due_at"] == "2027-02-20T00:00:00Z"
    wrong = {**completion, "person": "tess"}
    assert (
        client.post("/api/v1/training/completions", json=wrong, headers=as_(tokens, "rob")).status_code == 409
    )
    overdue = client.get("/api/v1/training/overdue", headers=as_(tokens, "vera")).json()
    assert [(o["person"], o["training"]) for o in overdue] == [
        ("bob", "incident-response"),
        ("tess", "risk-management"),
    ]
    matrix = client.get("/api/v1/training/matrix", headers=as_(tokens, "vera")).json()
    assert [(m["role"], m["training"], m["people"]) for m in matrix] == [
        ("sre", "incident-response", ["ann", "bob"]),
        ("team-lead", "risk-management", ["tess"]),
    ]
    components = client.get("/api/v1/lifecycle/components", headers=as_(tokens, "vera")).json()
    assert [(c["name"], c["version"], c["support"], c["on_notice"]) for c in components] == [
        ("api", "3.1.0", "full", True),
        ("pg", "16.0", "full", False),
    ]
    review_list = client.get("/api/v1/lifecycle/review", headers=as_(tokens, "vera")).json()
    assert [c["name"] for c in review_list] == ["api", "pg"]
    actors = [
        (e.kind, e.actor) for e in events(engine, "docs.reviewed") + events(engine, "lifecycle.transition")
    ]
    assert actors == [("docs.reviewed", "token:rob"), ("lifecycle.transition", "token:tess")]


def test_the_cli_lists_records_as_the_user_and_refuses_in_one_line(
    engine: Engine, cli: Callable[..., Result]
) -> None:
    listed = cli("lifecycle", "components")
    assert listed.exit_code == 0 and "EOL notice" in listed.output and "2026-12-01" in listed.output
    assert cli("lifecycle", "transition", "api", "--to", "maintenance", "--note", "freeze").exit_code == 0
    (moved,) = events(engine, "lifecycle.transition")
    assert (moved.actor, moved.payload["to"], moved.payload["note"]) == ("user:olga", "maintenance", "freeze")
    refused = cli("lifecycle", "transition", "api", "--to", "development")
    assert refused.exit_code == 1 and "maintenance → development is not a lifecycle step" in refused.output

    assert "api-runbook" in cli("docs", "stale").output  # its component moved
    assert cli("docs", "reviewed", "api-runbook", "--note", "checked").exit_code == 0
    assert "api-runbook" not in cli("docs", "stale").output
    (reviewed,) = events(engine, "docs.reviewed")
    assert reviewed.actor == "user:olga" and reviewed.payload["note"] == "checked"

    assert "ann" in cli("training", "overdue").output
    assert cli("training", "completed", "ann", "incident-response", "--on", "2026-11-20").exit_code == 0
    overdue = cli("training", "overdue", "--json").output
    assert '"person":"ann"' not in overdue and '"person":"bob"' in overdue
    bad = cli("training", "completed", "vic", "incident-response")
    assert bad.exit_code == 1 and "vic's roles (none) do not require incident-response" in bad.output
    assert "quarterly" in cli("training", "matrix").output
    review = cli("lifecycle", "review", "--json").output.splitlines()
    assert len(review) == 2 and '"name":"api"' in review[0]
