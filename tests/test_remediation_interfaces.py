"""Remediation's interfaces on SQLite: approving over the API (responders only) and denying from the
CLI, the scheduler loop acting on an alert posted to the API, breakers and circuits listed and reset,
and the auto-remediation success rate in the KPI report. (The flow on both stores:
test_remediation_engine.py.)"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta

import pytest
from typer.testing import CliRunner

from maintd.cli import app
from maintd.engine import Engine
from maintd.incidents import service
from maintd.kpi.report import compute
from maintd.remediation.circuits import open_circuit
from maintd.store.db import Store
from maintd.store.events import Event, append
from maintd.store.models import RemediationBreakerRow
from tests.conftest import T0
from tests.personas import as_
from tests.test_escalation import events
from tests.test_remediation_engine import SINGLE, alert, engine_with, incident, remediate, rows


@pytest.fixture
def engine(sqlite_store: Store, write_plan, make_engine) -> Engine:  # type: ignore[no-untyped-def]
    return engine_with(sqlite_store, write_plan, make_engine, SINGLE)


def test_a_destructive_action_waits_for_a_responder_who_approves_it(engine: Engine, client, tokens):  # type: ignore[no-untyped-def]
    incident_id = alert(engine, alertname="high_memory", target="web-1")
    remediate(engine)
    (row,) = rows(engine.store)
    assert row.state == "awaiting_approval" and "command is destructive" in row.reason

    assert (
        client.post(f"/api/v1/remediations/{row.id}/approve", headers=as_(tokens, "vera")).status_code == 403
    )
    answer = client.post(
        f"/api/v1/remediations/{row.id}/approve", json={"note": "go"}, headers=as_(tokens, "rob")
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["state"] == "queued" and answer.json()["decided_by"] == "token:rob"
    conflict = client.post(f"/api/v1/remediations/{row.id}/deny", headers=as_(tokens, "rob"))
    assert conflict.status_code == 409

    remediate(engine)
    listed = client.get(f"/api/v1/remediations?incident={incident_id}", headers=as_(tokens, "vera")).json()
    assert [(r["id"], r["state"], r["outcome"]) for r in listed] == [(row.id, "succeeded", "success")]
    decisions = [e.payload["decision"] for e in events(engine.store, "remediation.decided")]
    assert decisions == ["needs_approval", "executed"]
    assert incident(engine.store, incident_id).state == "mitigated"


def test_a_responder_denies_from_the_cli_and_nothing_runs(engine: Engine):
    alert(engine, alertname="high_memory", target="web-1")
    remediate(engine)
    (row,) = rows(engine.store)
    db = {"MAINTD_DATABASE_URL": engine.store.url}
    listed = CliRunner().invoke(app, ["remediation", "list"], env=db)
    assert listed.exit_code == 0 and "awaiting_approval" in listed.output and "bounce" in listed.output
    denied = CliRunner().invoke(app, ["remediation", "deny", str(row.id), "--note", "not now"], env=db)
    assert denied.exit_code == 0, denied.output
    again = CliRunner().invoke(app, ["remediation", "approve", str(row.id)], env=db)
    assert again.exit_code == 1 and f"remediation {row.id} is denied" in again.output
    assert remediate(engine) == []
    (row,) = rows(engine.store)
    assert row.state == "denied" and row.reason.endswith(": not now")


def test_the_kpi_report_gives_the_auto_remediation_success_rate_overall_and_per_playbook(sqlite_store: Store):
    store = sqlite_store
    day = timedelta(days=1)

    def ended(at_day: float, playbook: str, outcome: str, kind: str = "remediation.executed") -> Event:
        payload = {"playbook": playbook, "outcome": outcome}
        return Event(kind, "incident:1", T0 + at_day * day, "remediation", payload)

    with store.write() as s:
        append(
            s,
            [
                ended(1, "clean-tmp", "success"),
                ended(2, "clean-tmp", "success"),
                ended(3, "clean-tmp", "failure"),
                ended(4, "bounce", "failure"),
                ended(5, "bounce", "success", kind="remediation.dry_run"),  # a dry run: not counted
                ended(-1, "bounce", "success"),  # before the period
                ended(30, "bounce", "success"),  # at its end: the next period's
            ],
        )
    with store.read() as s:
        found = compute(s, end=T0 + 30 * day, period=30 * day, now=T0 + 30 * day)
    overall = found.get("remediation.success_rate")
    assert (overall.value, overall.samples, overall.group) == (50.0, 4, "incidents")
    assert overall.how == "2 of 4 executions of every playbook that ended in the period succeeded (verified)"
    assert found.get("remediation.success_rate.clean-tmp").value == 66.667
    assert found.get("remediation.success_rate.bounce").value == 0.0
    assert overall.met is False


def test_the_scheduler_loop_remediates_an_alert_posted_to_the_api_by_itself(engine: Engine, client, tokens):  # type: ignore[no-untyped-def]
    async def go() -> None:
        engine.start()
        answer = await asyncio.to_thread(
            client.post,
            "/api/v1/alerts",
            json=[{"labels": {"alertname": "high_memory", "target": "web-1"}, "severity": "critical"}],
            headers=as_(tokens, "rob"),
        )
        assert answer.status_code == 200, answer.text
        await until(lambda: [r.state for r in rows(engine.store)] == ["awaiting_approval"], "a decision")
        approved = await asyncio.to_thread(
            client.post, "/api/v1/remediations/1/approve", headers=as_(tokens, "rob")
        )
        assert approved.status_code == 200, approved.text
        await until(lambda: [r.state for r in rows(engine.store)] == ["succeeded"], "the execution")
        await engine.stop(1)

    asyncio.run(go())
    assert events(engine.store, "remediation.executed")[0].payload["outcome"] == "success"


async def until(condition: Callable[[], bool], what: str, within: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.01)


def test_open_circuits_and_breakers_are_listed_for_viewers(engine: Engine, client, tokens):  # type: ignore[no-untyped-def]
    now = engine.clock.now()
    with engine.store.write() as s:
        open_circuit(s, "payments", until=now + timedelta(minutes=5), reason="playbook rate-limited", now=now)
        open_circuit(s, "search", until=now - timedelta(seconds=1), reason="closed already", now=now)
        s.add(RemediationBreakerRow(playbook="bounce", failures=3, opened_at=now, updated_at=now))
    viewer = as_(tokens, "vera")
    circuits = client.get("/api/v1/remediations/circuits", headers=viewer).json()
    assert [(c["name"], c["reason"]) for c in circuits] == [("payments", "playbook rate-limited")]
    breakers = client.get("/api/v1/remediations/breakers", headers=viewer).json()
    assert [(b["playbook"], b["failures"]) for b in breakers] == [("bounce", 3)]
    assert client.post("/api/v1/remediations/breakers/bounce/reset", headers=viewer).status_code == 403
    reset = client.post("/api/v1/remediations/breakers/bounce/reset", headers=as_(tokens, "rob"))
    assert reset.status_code == 200 and reset.json()["opened_at"] is None
    missing = client.post("/api/v1/remediations/breakers/nope/reset", headers=as_(tokens, "rob"))
    assert missing.status_code == 404


def test_an_execution_cannot_be_approved_once_its_incident_resolved(engine: Engine):
    incident_id = alert(engine, alertname="high_memory", target="web-1")
    remediate(engine)
    (row,) = rows(engine.store)
    with engine.store.write() as s:
        assert engine.loaded is not None
        settings = engine.loaded.plan.incidents
        service.resolve(
            s, incident_id=incident_id, actor="user:rob", now=engine.clock.now(), settings=settings
        )
    db = {"MAINTD_DATABASE_URL": engine.store.url}
    refused = CliRunner().invoke(app, ["remediation", "approve", str(row.id)], env=db)
    assert refused.exit_code == 1
    assert (
        f"incident {incident_id} is resolved: nothing left to remediate (deny it instead)" in refused.output
    )
    assert CliRunner().invoke(app, ["remediation", "deny", str(row.id)], env=db).exit_code == 0
