"""The HTTP API: tokens and roles, the read routes, readiness, metrics, plan reload."""

from __future__ import annotations

import pytest

from maintd.engine import Engine
from tests.conftest import run
from tests.personas import as_

PLAN = """
    targets:
      - {name: web, kind: service}
    tasks:
      - name: ping
        kind: command
        targets: [web]
        schedule: {every: 1m}
        params: {argv: [sh, -c, "echo pong; exit 2"], read_only: true}
"""


@pytest.fixture
def engine(store, write_plan, make_engine) -> Engine:  # type: ignore[no-untyped-def]
    engine = make_engine(store, write_plan(PLAN))
    assert engine.reload().ok
    return engine


def run_once(engine: Engine) -> None:
    async def go() -> None:
        orders, _ = engine.tick(engine.clock.now())
        await engine.runner.run_all(orders)
        await engine.runner.stop(0)

    run(go())


def test_every_api_route_needs_a_token(client):
    for path in ("/api/v1/tasks", "/api/v1/runs", "/api/v1/events", "/api/v1/plan"):
        response = client.get(path)
        assert response.status_code == 401
        assert response.headers["content-type"] == "application/problem+json"
        assert response.headers["www-authenticate"] == "Bearer"


def test_an_unknown_or_revoked_token_is_refused(client, tokens, engine):
    assert client.get("/api/v1/tasks", headers={"Authorization": "Bearer mtd_nope"}).status_code == 401
    from maintd.auth import revoke_token

    with engine.store.write() as s:
        revoke_token(s, name="vera", now=engine.clock.now(), actor="test")
    response = client.get("/api/v1/tasks", headers=as_(tokens, "vera"))
    assert response.status_code == 401
    assert response.json()["detail"] == "unknown or revoked token"


def test_a_viewer_reads_tasks_runs_and_events(client, tokens, engine):
    run_once(engine)
    tasks = client.get("/api/v1/tasks", headers=as_(tokens, "vera")).json()
    assert [(t["name"], t["targets"][0]["target"], t["targets"][0]["last_status"]) for t in tasks] == [
        ("ping", "web", "critical")
    ]
    runs = client.get("/api/v1/runs", params={"task": "ping"}, headers=as_(tokens, "vera")).json()
    assert [(r["status"], r["output"]) for r in runs] == [("critical", "pong")]
    one = client.get(f"/api/v1/runs/{runs[0]['id']}", headers=as_(tokens, "vera")).json()
    assert one["id"] == runs[0]["id"]
    events = client.get("/api/v1/events", params={"kind": "task."}, headers=as_(tokens, "vera")).json()
    assert [e["kind"] for e in events] == ["task.status"]


def test_runs_filter_by_status_and_page_backwards(client, tokens, engine):
    for _ in range(3):
        run_once(engine)
        engine.clock.advance(60)
    headers = as_(tokens, "vera")
    assert client.get("/api/v1/runs", params={"status": "ok"}, headers=headers).json() == []
    first = client.get("/api/v1/runs", params={"limit": 2}, headers=headers).json()
    rest = client.get(
        "/api/v1/runs", params={"limit": 2, "before": first[-1]["started_at"]}, headers=headers
    ).json()
    assert len(first) == 2 and len(rest) == 1
    assert rest[0]["started_at"] < first[-1]["started_at"]


def test_bad_query_values_get_a_problem_naming_the_field(client, tokens):
    response = client.get("/api/v1/runs", params={"status": "great", "limit": 0}, headers=as_(tokens, "vera"))
    assert response.status_code == 422
    assert {e["field"] for e in response.json()["errors"]} == {"query.status", "query.limit"}


def test_an_unknown_run_or_task_is_404(client, tokens):
    assert client.get("/api/v1/runs/nope", headers=as_(tokens, "vera")).status_code == 404
    assert client.get("/api/v1/tasks/nope", headers=as_(tokens, "vera")).status_code == 404


def test_reloading_the_plan_needs_a_team_lead(client, tokens):
    response = client.post("/api/v1/plan/reload", headers=as_(tokens, "rob"))
    assert response.status_code == 403
    assert "team-lead" in response.json()["detail"]
    response = client.post("/api/v1/plan/reload", headers=as_(tokens, "tess"))
    assert response.status_code == 200
    assert response.json()["ok"] is True and response.json()["changed"] is False


def test_a_rejected_reload_says_why_and_keeps_the_running_plan(client, tokens, engine, write_plan):
    before = client.get("/api/v1/plan", headers=as_(tokens, "vera")).json()["digest"]
    write_plan("tasks:\n  - name: x\n    kind: nope\n")
    response = client.post("/api/v1/plan/reload", headers=as_(tokens, "ada"))
    assert response.status_code == 422
    body = response.json()
    assert body["ok"] is False
    assert any("plan.yaml:" in p for p in body["problems"])
    assert client.get("/api/v1/plan", headers=as_(tokens, "vera")).json()["digest"] == before
    events = client.get(
        "/api/v1/events", params={"kind": "plan.rejected"}, headers=as_(tokens, "vera")
    ).json()
    assert events[-1]["actor"] == "token:ada"


def test_readyz_waits_for_the_scheduler_heartbeat(client, engine):
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"]["scheduler"] == "no scheduler heartbeat yet"
    engine.tick(engine.clock.now())
    assert client.get("/readyz").json() == {
        "ready": True,
        "checks": {"database": "ok", "plan": "ok", "scheduler": "ok"},
    }
    engine.clock.advance(120)
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"]["scheduler"].startswith("last heartbeat")


def test_healthz_and_metrics_need_no_token(client, engine):
    run_once(engine)
    assert client.get("/healthz").json() == {"status": "ok"}
    text = client.get("/metrics").text
    assert 'maintd_runs_total{kind="command",state="finished",status="critical"} 1.0' in text
    assert "maintd_run_duration_seconds_bucket" in text
    assert "maintd_scheduler_lag_seconds_count 1.0" in text


def test_the_openapi_document_lists_every_route(client):
    paths = set(client.get("/openapi.json").json()["paths"])
    assert {
        "/healthz",
        "/readyz",
        "/metrics",
        "/api/v1/tasks",
        "/api/v1/tasks/{name}",
        "/api/v1/runs",
        "/api/v1/runs/{run_id}",
        "/api/v1/events",
        "/api/v1/plan",
        "/api/v1/plan/reload",
        "/api/v1/incidents",
        "/api/v1/incidents/{incident_id}",
        "/api/v1/incidents/{incident_id}/acknowledge",
        "/api/v1/incidents/{incident_id}/mitigate",
        "/api/v1/incidents/{incident_id}/resolve",
        "/api/v1/incidents/{incident_id}/reopen",
        "/api/v1/incidents/{incident_id}/close",
        "/api/v1/incidents/{incident_id}/assign",
        "/api/v1/incidents/{incident_id}/notes",
        "/api/v1/incidents/{incident_id}/priority",
        "/api/v1/alerts",
        "/api/v1/silences",
        "/api/v1/silences/{silence_id}",
        "/api/v1/maintenance-windows",
        "/api/v1/oncall",
        "/api/v1/oncall/{schedule}.ics",
        "/api/v1/oncall/people/{person}.ics",
        "/api/v1/oncall/{schedule}/handoff",
        "/api/v1/notifications",
        "/api/v1/notifications/{notification_id}",
        "/api/v1/kpis",
        "/api/v1/capacity",  # capacity (maintd.capacity)
        "/api/v1/slos",  # SLOs (maintd.slo)
        "/api/v1/postmortems",
        "/api/v1/postmortem-actions",
        "/api/v1/postmortems/{incident_id}",
        "/api/v1/postmortems/{incident_id}/markdown",
        "/api/v1/postmortems/{incident_id}/review",
        "/api/v1/postmortems/{incident_id}/send-back",
        "/api/v1/postmortems/{incident_id}/complete",
        "/api/v1/postmortems/{incident_id}/actions",
        "/api/v1/postmortems/{incident_id}/actions/{action_id}",
        "/api/v1/reviews",
        "/api/v1/reviews/findings",
        "/api/v1/reviews/findings/{finding_id}",
        "/api/v1/reviews/{review_id}",
        "/api/v1/reviews/{review_id}/areas/{area}",
        "/api/v1/reviews/{review_id}/findings",
        "/api/v1/reviews/{review_id}/complete",
        "/api/v1/remediations",  # remediation (maintd.remediation)
        "/api/v1/remediations/{remediation_id}",
        "/api/v1/remediations/{remediation_id}/approve",
        "/api/v1/remediations/{remediation_id}/deny",
        "/api/v1/remediations/breakers",
        "/api/v1/remediations/breakers/{playbook}/reset",
        "/api/v1/remediations/circuits",
        "/api/v1/changes",  # change requests (maintd.changes)
        "/api/v1/changes/{change_id}",
        "/api/v1/changes/{change_id}/plan",
        "/api/v1/changes/{change_id}/submit",
        "/api/v1/changes/{change_id}/approve",
        "/api/v1/changes/{change_id}/reject",
        "/api/v1/changes/{change_id}/cancel",
        "/api/v1/changes/{change_id}/execute",
        "/api/v1/changes/{change_id}/rollback",
        "/api/v1/lifecycle/components",  # lifecycle (maintd.lifecycle)
        "/api/v1/lifecycle/components/{name}/transition",
        "/api/v1/lifecycle/review",
        "/api/v1/docs",
        "/api/v1/docs/stale",
        "/api/v1/docs/{name}/reviewed",
        "/api/v1/training/matrix",
        "/api/v1/training/overdue",
        "/api/v1/training/completions",
        "/ack/{token}",
        "/resolve/{token}",
        "/integrations/alertmanager/{integration_key}",
        "/v2/enqueue",
    } == paths
