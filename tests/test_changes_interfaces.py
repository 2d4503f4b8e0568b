"""Changes through the API (personas with tokens) and the CLI (a token in MAINTD_TOKEN)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from maintd.alerts.model import AlertIn, Severity
from maintd.auth import Role, create_token
from maintd.changes.worker import ChangeWorker
from maintd.cli import app
from maintd.engine import Engine
from maintd.incidents.pipeline import ingest
from maintd.kpi.report import compute
from maintd.store import events
from tests.changes_support import Service, plan_text, run_with_worker, web_fixture  # noqa: F401
from tests.personas import as_


@pytest.fixture
def engine(store, write_plan, make_engine, web: Service) -> Engine:  # type: ignore[no-untyped-def]
    engine = make_engine(store, write_plan(plan_text(web)))
    assert engine.reload().ok, engine.last_reload
    return engine


@pytest.fixture
def director(engine: Engine) -> dict[str, str]:
    with engine.store.write() as s:
        token = create_token(s, name="dirk", role=Role.director, now=engine.clock.now(), actor="test")
    return {"Authorization": f"Bearer {token}"}


def evidence_run(engine: Engine) -> str:
    async def run(worker: ChangeWorker) -> str:
        assert engine.loaded is not None
        (health,) = await worker.executor.checks.run(engine.loaded, ["web-health"], actor="test")
        assert health.run_id is not None
        return health.run_id

    return run_with_worker(engine, run)


def run_steps(engine: Engine, advance: timedelta = timedelta(0)) -> list[str]:
    async def run(worker: ChangeWorker) -> list[str]:
        engine.clock.advance(advance)
        return [s.name for s in await worker.run_due()]

    return run_with_worker(engine, run)


def open_p1(engine: Engine) -> None:
    assert engine.loaded is not None
    alert = AlertIn(
        source="native", labels={"alertname": "ApiDown"}, severity=Severity.critical, summary="down"
    )
    with engine.store.write() as s:
        ingest(s, [alert], now=engine.clock.now(), settings=engine.loaded.plan.incidents, actor="t")


def test_a_change_through_the_api_with_each_persona(
    engine: Engine, client: TestClient, tokens: dict[str, str], director: dict[str, str], web: Service
) -> None:
    body: dict[str, Any] = {
        "type": "configuration-update",
        "title": "serve the broken config",
        "procedure": "swap-config",
        "params": {"new": str(web.broken)},
        "targets": ["web"],
        "evidence": {"test-suite": evidence_run(engine)},
    }
    assert client.post("/api/v1/changes", json=body, headers=as_(tokens, "vera")).status_code == 403
    assert (
        client.post("/api/v1/changes", json={**body, "evidence": {}}, headers=as_(tokens, "rob")).status_code
        == 409
    )
    created = client.post("/api/v1/changes", json=body, headers=as_(tokens, "rob"))
    assert created.status_code == 201, created.text
    change = created.json()
    assert (change["state"], change["missing_approvals"]) == ("pending_approval", ["team-lead x1"])
    url = f"/api/v1/changes/{change['id']}"
    refused = client.post(f"{url}/approve", headers=as_(tokens, "rob"))
    assert (refused.status_code, refused.json()["detail"]) == (
        403,
        f"rob requested change {change['id']}; the requester cannot approve it",
    )
    assert client.post(f"{url}/approve", headers=as_(tokens, "vera")).status_code == 403
    approved = client.post(f"{url}/approve", json={"note": "ok"}, headers=as_(tokens, "tess"))
    assert approved.json()["state"] == "approved"
    assert approved.json()["approvals"][0]["person"] == "tess"
    steps = client.get(f"{url}/plan", headers=as_(tokens, "vera")).json()["steps"]
    assert steps[0].startswith("snapshot: cp ") and steps[1].startswith("pre-check: run web-health")

    open_p1(engine)
    frozen = client.post(f"{url}/execute", headers=as_(tokens, "rob"))
    assert frozen.status_code == 409 and "changes are frozen" in frozen.json()["detail"]
    override = {"override_freeze": "it fixes the incident"}
    assert client.post(f"{url}/execute", json=override, headers=as_(tokens, "mia")).status_code == 403
    started = client.post(f"{url}/execute", json=override, headers=director)
    assert (started.status_code, started.json()["state"]) == (202, "executing")
    assert started.json()["freeze_override"]["by"] == "dirk"

    assert run_steps(engine) == ["execute.1"]
    listed = client.get("/api/v1/changes", params={"state": "watching"}, headers=as_(tokens, "vera")).json()
    assert [c["id"] for c in listed] == [change["id"]]
    assert (
        client.post(f"{url}/rollback", json={"note": "looks wrong"}, headers=as_(tokens, "vera")).status_code
        == 403
    )
    back = client.post(f"{url}/rollback", json={"note": "looks wrong"}, headers=as_(tokens, "rob"))
    assert (back.status_code, back.json()["state"]) == (202, "rolling_back")
    assert run_steps(engine) == ["rollback.1"]
    final = client.get(url, headers=as_(tokens, "vera")).json()
    assert (final["state"], final["outcome"]) == ("rolled_back", "looks wrong")
    assert web.healthy()
    assert client.get("/api/v1/changes/999", headers=as_(tokens, "vera")).status_code == 404


@pytest.fixture
def cli(engine: Engine, monkeypatch: pytest.MonkeyPatch, tokens: dict[str, str], tmp_path: Path):  # type: ignore[no-untyped-def]
    assert engine.settings.plan_path is not None
    clock_file = tmp_path / "cli-clock"  # the commands' time: the engine's fake clock, as the test left it
    clock_file.write_text(engine.clock.now().isoformat())
    monkeypatch.setenv("MAINTD_CLOCK", f"file:{clock_file}")
    monkeypatch.setenv("MAINTD_DATABASE_URL", engine.store.url)
    monkeypatch.setenv("MAINTD_PLAN", str(engine.settings.plan_path))
    monkeypatch.delenv("MAINTD_TOKEN", raising=False)

    def invoke(*args: str, who: str | None = None) -> Any:
        env = {"MAINTD_TOKEN": tokens[who]} if who else {}
        return CliRunner().invoke(app, ["change", *args], env=env, catch_exceptions=False)

    return invoke


def test_a_change_through_the_cli_completes_and_counts_in_the_kpi(engine: Engine, cli, web: Service) -> None:  # type: ignore[no-untyped-def]
    create = ["create", "--type", "standard", "--title", "new config", "--procedure", "swap-config"]
    create += ["-p", f"new={web.good}", "-t", "web"]
    anonymous = cli(*create)
    assert anonymous.exit_code == 1 and "needs your API token" in anonymous.output
    made = cli(*create, who="rob")
    assert made.exit_code == 0, made.output
    assert made.output.strip() == "change 1 is approved"  # a standard change is pre-approved
    plan = cli("execute", "1", "--dry-run")
    assert "1. snapshot: cp " in plan.output and "apply on web: cp " in plan.output
    assert cli("execute", "1", who="rob").output.strip() == "change 1 is executing"
    assert "executing" in cli("list").output and "new config" in cli("list").output

    assert run_steps(engine) == ["execute.1"]
    for _ in range(5):
        run_steps(engine, timedelta(minutes=1))
    shown = json.loads(cli("show", "1", "--json").output)
    assert (shown["state"], shown["requested_by"]) == ("completed", "rob")
    assert [e["kind"] for e in shown["timeline"]][-1] == "change.completed"
    assert "change.completed" in cli("show", "1").output

    again = cli("rollback", "1", who="rob")
    assert again.exit_code == 1 and "change 1 is completed" in again.output
    with engine.store.read() as s:
        report = compute(
            s, end=engine.clock.now() + timedelta(seconds=1), period=timedelta(days=1), now=engine.clock.now()
        )
        assert len(events.query(s, subject="change:1", kind="change.completed")) == 1
    figure = report.get("seed.patch_deployment_success")
    assert (figure.value, figure.samples) == (100.0, 1)


def test_execute_wait_runs_the_watch_in_the_command_on_the_file_clock(
    engine: Engine,
    cli,
    web: Service,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,  # type: ignore[no-untyped-def]
) -> None:
    clock_file = tmp_path / "clock"
    now = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)
    clock_file.write_text(now.isoformat())
    monkeypatch.setenv("MAINTD_CLOCK", f"file:{clock_file}")
    create = [
        "create",
        "--type",
        "standard",
        "--title",
        "t",
        "--procedure",
        "swap-config",
        "-p",
        f"new={web.good}",
    ]
    assert cli(*create, "-t", "web", who="rob").output.strip() == "change 1 is approved"
    result: list[Any] = []
    command = threading.Thread(target=lambda: result.append(cli("execute", "1", "--wait", who="rob")))
    command.start()

    def count(kind: str) -> int:
        with engine.store.read() as s:
            return len(events.query(s, subject="change:1", kind=kind))

    def wait_for(condition: Callable[[], bool], what: str) -> None:
        deadline = time.monotonic() + 20
        while not condition():
            assert time.monotonic() < deadline, f"gave up waiting until {what}: {result}"
            time.sleep(0.01)

    wait_for(lambda: count("change.watching") == 1, "watching")
    for minute in range(1, 6):
        clock_file.write_text((now + timedelta(minutes=minute)).isoformat())
        wait_for(lambda: count("change.checked") == minute, f"round {minute}")  # noqa: B023 (used at once)
    command.join(timeout=20)
    assert not command.is_alive()
    (done,) = result
    assert (done.exit_code, done.output.strip().splitlines()[-1]) == (0, "change 1 is completed")


def test_the_cli_submits_a_draft_with_evidence_and_approves_or_rejects_by_the_matrix(
    engine: Engine, cli: Any, web: Service
) -> None:
    create = ["create", "--type", "configuration-update", "--title", "t", "--procedure", "swap-config"]
    create += ["-p", f"new={web.good}", "-t", "web", "--draft"]
    assert cli(*create, who="rob").output.strip() == "change 1 is draft"
    bare = cli("submit", "1", who="rob")
    assert bare.exit_code == 1 and "test-suite" in bare.output  # the matrix wants evidence for this type
    evidence = f"test-suite={evidence_run(engine)}"
    assert cli("submit", "1", "-e", evidence, who="rob").output.strip() == "change 1 is pending_approval"

    own = cli("approve", "1", who="rob")
    assert own.exit_code == 1 and "the requester cannot approve it" in own.output
    assert cli("approve", "1", "--note", "ok", who="tess").output.strip() == "change 1 is approved"
    shown = json.loads(cli("show", "1", "--json").output)
    assert [(a["person"], a["note"]) for a in shown["approvals"]] == [("tess", "ok")]

    assert cli(*create, who="rob").output.strip() == "change 2 is draft"
    assert cli("submit", "2", "-e", evidence, who="rob").exit_code == 0
    rejected = cli("reject", "2", "--note", "not this week", who="tess")
    assert rejected.output.strip() == "change 2 is rejected", rejected.output
    timeline = json.loads(cli("show", "2", "--json").output)["timeline"]
    assert [(e["kind"], e["actor"], e["payload"].get("note")) for e in timeline][-1] == (
        "change.rejected",
        "token:tess",
        "not this week",
    )
