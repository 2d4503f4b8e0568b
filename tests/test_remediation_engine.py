"""Playbooks through the engine, on both databases: an alert → a decision → an execution with a real
effect → the failing check run again → the incident mitigated, or escalated at once with what was tried.

Real files under a temporary root are cleaned (and refused outside it); failures page at once and
open the playbook's breaker; dry runs change nothing; one execution per target across two engines; a
certificate renewed through the certificates action (pebble). The API, CLI, loop and KPI on SQLite:
test_remediation_interfaces.py.
"""

from __future__ import annotations

import asyncio
import os
import sys
import textwrap
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from maintd.alerts.model import AlertIn, Severity
from maintd.checks.base import Status
from maintd.cli import app
from maintd.engine import Engine
from maintd.incidents.pipeline import ingest
from maintd.store.db import Store
from maintd.store.models import IncidentRow, RemediationBreakerRow, RemediationRow
from maintd.timers import pending
from tests.acme_support import free_port, pebble
from tests.conftest import T0
from tests.test_action_certificates import AUDIT_PLAN, live_certificate
from tests.test_escalation import events, plan
from tests.tls_support.certs import Issued, root

CHECK_ABSENT = "import os, sys; sys.exit(2 if os.path.exists(sys.argv[1]) else 0)"
NEVER = '{cron: "0 0 1 1 *"}'  # the tasks here only run when remediation runs them


def engine_with(
    store: Store, write_plan: Callable[..., Path], make_engine: Callable[..., Engine], more: str
) -> Engine:
    engine = make_engine(store, write_plan(plan(group_wait="10m", more=textwrap.dedent(more))))
    assert engine.reload().ok, engine.last_reload
    return engine


def alert(engine: Engine, at: Any = None, **labels: str) -> int:
    """A firing alert with these labels; the id of its incident."""
    assert engine.loaded is not None
    delivery = AlertIn(source="native", labels=labels, severity=Severity.critical, summary="disk full")
    with engine.store.write() as s:
        (d,) = ingest(
            s, [delivery], now=at or engine.clock.now(), settings=engine.loaded.plan.incidents, actor="test"
        )
        assert d.incident is not None
        return d.incident.id


def remediate(engine: Engine) -> list[int]:
    """One tick (the intake) and one pass of the executor; the ids executed."""
    engine.tick(engine.clock.now())

    async def drain() -> list[int]:
        try:
            return await engine.remediator.run_pending()
        finally:
            await engine.remediator.resources.aclose()
            await engine.runner.stop(5)

    return asyncio.run(drain())


def rows(store: Store) -> list[RemediationRow]:
    with store.read() as s:
        return list(s.scalars(select(RemediationRow).order_by(RemediationRow.id)))


def incident(store: Store, incident_id: int) -> IncidentRow:
    with store.read() as s:
        found = s.get(IncidentRow, incident_id)
        assert found is not None
        return found


def aged(path: Path, age: timedelta, text: str = "x") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    stamp = (T0 - age).timestamp()
    os.utime(path, (stamp, stamp))
    return path


def disk_plan(root: Path, paths: list[Path], *, raised_by_runs: bool = False, **guardrails: Any) -> str:
    """``raised_by_runs``: the check raises its own alert, and the playbook matches it by task."""
    rails = ", ".join(f"{k}: {v}" for k, v in {"approval": "never", **guardrails}.items())
    alert = "alert: {after: 1}" if raised_by_runs else "enabled: true"
    match = "match: {task: tmp-space}" if raised_by_runs else "alert_type: disk_full"
    kind = "kind: clean_temp_files" if raised_by_runs else "# the seed's action for disk_full"
    return f"""
    targets:
      - {{name: box, kind: host}}
    tasks:
      - name: tmp-space
        kind: command
        targets: [box]
        schedule: {NEVER}
        {alert}
        params: {{argv: ["{sys.executable}", "-c", "{CHECK_ABSENT}", "{paths[0]}/old.tmp"]}}
    playbooks:
      - name: clean-tmp
        {match}
        action:
          {kind}
          params:
            paths: {[str(p) for p in paths]}
            allowed_roots: ["{root}"]
            patterns: ["*.tmp"]
            older_than: 1h
        guardrails: {{{rails}}}
    """


def test_disk_full_cleans_old_temp_files_under_the_allowed_root_checks_again_and_mitigates(
    store: Store, write_plan, make_engine, tmp_path: Path
):
    root = tmp_path / "scratch"
    old = aged(root / "app" / "old.tmp", timedelta(hours=2))
    deep = aged(root / "app" / "cache" / "deep.tmp", timedelta(hours=3))
    young = aged(root / "app" / "young.tmp", timedelta(minutes=5))
    log = aged(root / "app" / "keep.log", timedelta(days=3))
    engine = engine_with(store, write_plan, make_engine, disk_plan(root, [root / "app"]))
    incident_id = alert(engine, alertname="disk_full", task="tmp-space", target="box")

    (done,) = remediate(engine)

    assert not old.exists() and not deep.exists()
    assert young.exists() and log.exists()
    (row,) = rows(store)
    assert (row.id, row.state, row.outcome, row.verified, row.target) == (
        done,
        "succeeded",
        "success",
        "ok",
        "box",
    )
    assert incident(store, incident_id).state == "mitigated"
    (decided,) = events(store, "remediation.decided")
    assert decided.payload["decision"] == "executed" and decided.subject == f"incident:{incident_id}"
    (executed,) = events(store, "remediation.executed")
    assert executed.payload["playbook"] == "clean-tmp" and executed.payload["outcome"] == "success"
    (change,) = executed.payload["changes"]
    assert change["action"] == "delete" and sorted(change["detail"]["deleted"]) == sorted(
        [str(deep), str(old)]
    )
    with store.read() as s:  # mitigated: nobody is paged for it any more
        assert pending(s, subject=f"incident:{incident_id}", kind="escalate") == []


def test_a_path_outside_the_allowed_roots_is_refused_and_nothing_is_deleted(
    store: Store, write_plan, make_engine, tmp_path: Path
):
    root, outside = tmp_path / "scratch", tmp_path / "elsewhere"
    (root / "app").mkdir(parents=True)
    victim = aged(outside / "old.tmp", timedelta(days=1))
    link = root / "app" / "escape"
    link.symlink_to(outside)  # resolved, it is outside too
    engine = engine_with(store, write_plan, make_engine, disk_plan(root, [link]))
    incident_id = alert(engine, alertname="disk_full", task="tmp-space", target="box")

    remediate(engine)

    assert victim.exists()
    (row,) = rows(store)
    assert row.state == "suppressed"
    assert f"refused: {link} (resolved: {outside}) is outside the allowed roots {root}" in row.reason
    assert events(store, "remediation.executed") == []
    assert incident(store, incident_id).state == "triggered"


def test_a_dry_run_records_what_it_would_delete_and_deletes_nothing(
    store: Store, write_plan, make_engine, tmp_path: Path
):
    root = tmp_path / "scratch"
    old = aged(root / "old.tmp", timedelta(hours=2))
    engine = engine_with(store, write_plan, make_engine, disk_plan(root, [root], dry_run="true"))
    incident_id = alert(engine, alertname="disk_full", task="tmp-space", target="box")

    remediate(engine)

    assert old.exists()
    (would,) = events(store, "remediation.dry_run")
    assert would.payload["changes"][0]["detail"]["deleted"] == [str(old)]
    assert events(store, "remediation.executed") == []  # not counted as an execution, nor for the KPI
    assert incident(store, incident_id).state == "triggered"


FAILING = f"""
targets:
  - {{name: web-1, kind: host}}
  - {{name: web-2, kind: host}}
playbooks:
  - name: flaky
    match: {{alertname: high_memory}}
    action: {{kind: command, params: {{argv: ["{sys.executable}", "-c", "import sys; sys.exit(3)"]}}}}
    guardrails: {{approval: never, breaker_failures: 2, cooldown: 1m}}
"""


def test_a_failed_remediation_pages_at_once_and_repeated_failures_open_the_breaker(
    store: Store, write_plan, make_engine
):
    engine = engine_with(store, write_plan, make_engine, FAILING)
    first = alert(engine, alertname="high_memory", target="web-1")
    with store.read() as s:
        (step,) = [t for t in pending(s, subject=f"incident:{first}", kind="escalate") if t.step == "c0.l1"]
        assert step.due_at == T0 + timedelta(minutes=10)  # group_wait

    remediate(engine)

    (row,) = rows(store)
    assert (row.state, row.outcome) == ("failed", "failure")
    assert "exited with 3" in row.output
    (escalated,) = events(store, "remediation.escalated")
    assert escalated.payload["paged"] == "c0.l1" and "command on web-1" in escalated.payload["tried"]
    (note,) = events(store, "incident.note")
    assert note.payload["note"].startswith(
        "remediation 1 failed, a human takes over: playbook flaky tried command"
    )
    with store.read() as s:
        (step,) = [t for t in pending(s, subject=f"incident:{first}", kind="escalate") if t.step == "c0.l1"]
        assert step.due_at == T0  # brought forward: a human is paged now
    assert incident(store, first).state == "triggered"

    engine.clock.advance(timedelta(minutes=2))
    alert(engine, alertname="high_memory", target="web-2", team="other")  # another incident
    remediate(engine)
    with store.read() as s:
        breaker = s.get(RemediationBreakerRow, "flaky")
        assert breaker is not None and breaker.failures == 2 and breaker.opened_at == engine.clock.now()
    (opened,) = events(store, "remediation.breaker_opened")
    assert opened.payload == {"playbook": "flaky", "failures": 2, "last": 2}

    engine.clock.advance(timedelta(minutes=2))
    alert(engine, alertname="high_memory", target="web-1", team="third")
    remediate(engine)
    third = rows(store)[-1]
    assert third.state == "suppressed" and "circuit breaker open since" in third.reason

    db = {"MAINTD_DATABASE_URL": store.url}
    result = CliRunner().invoke(app, ["remediation", "breaker", "reset", "flaky"], env=db)
    assert result.exit_code == 0, result.output
    with store.read() as s:
        breaker = s.get(RemediationBreakerRow, "flaky")
        assert breaker is not None and (breaker.failures, breaker.opened_at) == (0, None)
    assert len(events(store, "remediation.breaker_reset")) == 1


def test_an_alert_type_without_a_playbook_is_left_to_the_incident_s_escalation(
    store: Store, write_plan, make_engine
):
    engine = engine_with(store, write_plan, make_engine, FAILING)
    incident_id = alert(engine, alertname="disk_melted", target="web-1")
    remediate(engine)
    assert rows(store) == []
    (escalated,) = events(store, "remediation.escalated")
    assert escalated.subject == f"incident:{incident_id}"
    assert (
        escalated.payload["reason"]
        == "no playbook for alert type 'disk_melted': the incident's escalation proceeds"
    )


def test_a_verification_that_still_fails_is_a_failed_remediation(
    store: Store, write_plan, make_engine, tmp_path
):
    root = tmp_path / "scratch"
    root.mkdir()
    stuck = aged(root / "old.tmp", timedelta(minutes=1))  # too young to clean: the check keeps failing
    engine = engine_with(store, write_plan, make_engine, disk_plan(root, [root]))
    incident_id = alert(engine, alertname="disk_full", task="tmp-space", target="box")
    remediate(engine)
    assert stuck.exists()
    (row,) = rows(store)
    assert (row.state, row.verified) == ("failed", "critical")
    assert "verification: tmp-space on box: critical" in row.output
    assert incident(store, incident_id).state == "triggered"


SINGLE = f"""
targets:
  - {{name: web-1, kind: host}}
playbooks:
  - name: bounce
    match: {{alertname: high_memory}}
    action: {{kind: command, params: {{argv: ["{sys.executable}", "-c", "pass"]}}}}
    guardrails: {{cooldown: 0s, max_executions: 10}}
"""


def test_one_execution_per_target_at_a_time_across_processes(engine: Engine, make_engine, write_plan):
    other = make_engine(engine.store, write_plan(plan(more=textwrap.dedent(SINGLE))))
    assert other.reload().ok
    with engine.store.write() as s:
        for _ in range(2):
            s.add(
                RemediationRow(
                    playbook="bounce",
                    action="command",
                    target="web-1",
                    state="queued",
                    reason="",
                    dry_run=False,
                    labels={"alertname": "high_memory", "target": "web-1"},
                    created_at=T0,
                    output="",
                    changes=[],
                )
            )
    first = engine.remediator._claim()
    second = other.remediator._claim()
    assert [c.id for c in first] == [1] and second == []  # the second waits: web-1 is being remediated
    with engine.store.read() as s:
        assert [r.state for r in s.scalars(select(RemediationRow).order_by(RemediationRow.id))] == [
            "running",
            "queued",
        ]


@pytest.fixture
def engine(store: Store, write_plan, make_engine) -> Engine:
    return engine_with(store, write_plan, make_engine, SINGLE)


@pytest.fixture
def ca() -> Issued:
    return root("maintd test issuer")


RENEW = """
    playbooks:
      - name: renew
        alert_type: certificate_expired
        action: {params: {task: certificates}}
"""


def test_certificate_expired_renews_through_the_certificates_action_and_checks_again(  # type: ignore[no-untyped-def]
    store, write_plan, make_engine, clock, tmp_path, ca
):
    clock.set(datetime.now(UTC).replace(microsecond=0))  # pebble issues at the wall-clock time
    live = tmp_path / "live"
    fullchain = live_certificate(live, ca, clock.now(), days_left=5)
    before = fullchain.read_bytes()
    with pebble(tmp_path / "pebble") as acme_server:  # PEBBLE_VA_ALWAYS_VALID
        plan_text = AUDIT_PLAN % (live, acme_server.directory_url, acme_server.ca_file, free_port())
        # The wall clock may sit in the task's own daily window; then its scheduled run would hold
        # the target and the remediation would be refused. Twelve hours away it is never due here.
        away = f'{{cron: "0 {(clock.now().hour + 12) % 24} * * *"}}'
        plan_text = plan_text.replace('{cadence: daily, window: "02:00-03:00 UTC"}', away)
        assert away in plan_text
        engine = engine_with(store, write_plan, make_engine, plan_text + RENEW)
        incident_id = alert(engine, alertname="certificate_expired", task="certificates", target="shop-cert")
        remediate(engine)
    (row,) = rows(store)
    assert (row.state, row.outcome, row.verified) == ("succeeded", "success", "ok"), row.reason + row.output
    assert fullchain.read_bytes() != before  # a new certificate from the ACME server
    (change,) = row.changes
    assert (change["action"], change["target"], change["detail"]["status"]) == ("renew", "shop-cert", "ok")
    assert incident(store, incident_id).state == "mitigated"


def test_an_execution_a_stopped_process_left_running_fails_after_its_limits_and_frees_its_target(
    engine: Engine,
):
    def row(state: str, started: Any) -> RemediationRow:
        return RemediationRow(
            playbook="bounce", action="command", target="web-1", state=state, reason="", dry_run=False,
            labels={"alertname": "high_memory", "target": "web-1"}, created_at=T0, output="", changes=[],
            started_at=started, owner="host:123:dead",
        )  # fmt: skip

    with engine.store.write() as s:
        s.add(row("running", T0 - timedelta(minutes=9)))  # the action's 5m and the 5m grace: not yet
        s.add(row("queued", None))
    assert engine.remediator._claim() == []
    engine.clock.advance(timedelta(minutes=1, seconds=1))
    (claimed,) = engine.remediator._claim()
    assert claimed.id == 2  # the target is free again
    first, _ = rows(engine.store)
    assert (first.state, first.outcome) == ("failed", "failure")
    assert first.output.startswith(
        "interrupted: still running 0:10:01 after it started; host:123:dead stopped"
    )


def test_an_alert_a_failing_run_raised_resolves_with_the_passing_re_run_and_so_does_its_incident(
    store: Store, write_plan, make_engine, tmp_path: Path
):
    root = tmp_path / "scratch"
    old = aged(root / "old.tmp", timedelta(hours=2))
    text = disk_plan(root, [root], raised_by_runs=True)
    engine = engine_with(store, write_plan, make_engine, text)

    async def failing_run() -> None:
        ran = await engine.remediator.run_task("tmp-space", "box")  # the check, run as any run
        assert ran.status is Status.critical
        await engine.runner.stop(5)

    asyncio.run(failing_run())
    (raised,) = events(store, "alert.firing")
    incident_id = raised.payload["incident"]

    remediate(engine)

    assert not old.exists()
    assert [r.state for r in rows(store)] == ["succeeded"]
    (resolved,) = events(store, "alert.resolved")
    assert resolved.subject == raised.subject  # the re-run passed: the alert it raised resolved
    assert incident(store, incident_id).state == "resolved"


HISTORY = f"""
targets:
  - {{name: web-1, kind: host}}
playbooks:
  - name: bounce
    match: {{alertname: high_memory}}
    action: {{kind: command, params: {{argv: ["{sys.executable}", "-c", "pass"]}}}}
    guardrails: {{approval: never, cooldown: 10m, max_executions: 2, window: 1h, max_unhealthy: 3}}
"""


def test_the_guardrails_read_cooldowns_rates_and_unhealthy_targets_from_the_store(
    store: Store, write_plan, make_engine
):
    engine = engine_with(store, write_plan, make_engine, HISTORY)

    def next_alert(target: str, **more: str) -> RemediationRow:
        engine.clock.advance(timedelta(minutes=1))
        alert(engine, alertname="high_memory", target=target, **more)
        remediate(engine)
        return rows(store)[-1]

    assert next_alert("web-1").state == "succeeded"
    again = next_alert("web-1", process="worker")  # another alert, the same target
    assert again.state == "suppressed" and again.reason.startswith("cooldown: web-1 was remediated at")
    assert next_alert("web-2").state == "succeeded"
    third = next_alert("web-3")
    assert third.state == "suppressed" and third.reason.startswith(
        "rate limit: 2 executions in the last 1:00:00"
    )
    fourth = next_alert("web-4")
    assert fourth.state == "suppressed"
    assert fourth.reason.startswith("4 targets are unhealthy, more than max_unhealthy 3")
