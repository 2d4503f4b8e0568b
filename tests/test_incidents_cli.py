"""``maintd incident``, ``maintd alerts`` and ``maintd silence`` against a real store."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from maintd.alerts.model import AlertIn, Severity
from maintd.cli import app
from maintd.incidents.pipeline import Delivery, ingest
from maintd.plan.incidents import IncidentSettings
from maintd.store.db import Store
from maintd.store.models import EventRow, IncidentRow


@pytest.fixture
def cli(sqlite_store, monkeypatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("MAINTD_DATABASE_URL", sqlite_store.url)
    monkeypatch.setenv("USER", "olga")
    monkeypatch.setenv("LOGNAME", "olga")
    runner = CliRunner()

    def invoke(*args: str):  # type: ignore[no-untyped-def]
        return runner.invoke(app, list(args), catch_exceptions=False)

    return invoke


def fire(store: Store, severity: Severity = Severity.critical, **labels: str) -> Delivery:
    labels = {"alertname": "ApiDown", "target": "api", **labels}
    with store.write() as s:
        (delivery,) = ingest(
            s,
            [AlertIn(source="native", labels=labels, severity=severity, summary="API answers [503]")],
            now=datetime.now(UTC),
            settings=IncidentSettings(),
            actor="test",
        )
        return delivery


def opened(store: Store, **kwargs) -> int:  # type: ignore[no-untyped-def]
    delivery = fire(store, **kwargs)
    assert delivery.incident is not None
    return delivery.incident.id


def state_of(store: Store, incident_id: int) -> str:
    with store.read() as s:
        row = s.get(IncidentRow, incident_id)
        assert row is not None
        return row.state


def test_incident_list_shows_open_incidents_with_their_deadline(cli, sqlite_store):
    p1 = opened(sqlite_store)
    p3 = opened(sqlite_store, severity=Severity.warning, target="web")
    result = cli("incident", "list")
    assert result.exit_code == 0
    assert "API answers [503]" in result.output  # titles are text, never markup
    assert "29m left" in result.output or "30m left" in result.output  # P1: 30 minutes
    lines = [json.loads(line) for line in cli("incident", "list", "--json").output.splitlines()]
    assert [(i["id"], i["priority"]) for i in lines] == [(p3, "P3"), (p1, "P1")]
    only_p1 = cli("incident", "list", "--priority", "P1", "--json").output.splitlines()
    assert [json.loads(line)["id"] for line in only_p1] == [p1]
    cli("incident", "resolve", str(p3))
    assert [json.loads(x)["id"] for x in cli("incident", "list", "--json").output.splitlines()] == [p1]
    everything = cli("incident", "list", "--state", "all", "--json").output.splitlines()
    assert len(everything) == 2
    bad = cli("incident", "list", "--state", "sleeping")
    assert bad.exit_code == 1 and "unknown state 'sleeping'" in bad.output


def test_show_prints_the_header_alerts_and_timeline(cli, sqlite_store):
    incident_id = opened(sqlite_store)
    result = cli("incident", "show", str(incident_id))
    assert result.exit_code == 0
    out = result.output
    assert f"incident {incident_id}" in out and "P1" in out and "triggered" in out
    assert "left)" in out and "post-mortem required" in out
    assert "API answers [503]" in out  # the alert's summary, in the alerts table
    assert "incident.opened" in out and "alert.firing" in out
    detail = json.loads(cli("incident", "show", str(incident_id), "--json").output)
    assert [a["labels"]["alertname"] for a in detail["alerts"]] == ["ApiDown"]
    assert [e["kind"] for e in detail["timeline"]] == ["incident.opened", "alert.firing"]


def test_show_says_when_the_deadline_was_breached(cli, sqlite_store):
    incident_id = opened(sqlite_store)
    with sqlite_store.write() as s:
        row = s.get(IncidentRow, incident_id)
        assert row is not None
        row.ack_deadline = datetime.now(UTC) - timedelta(minutes=7)
        row.breached_at = row.ack_deadline
    assert "breached 7m ago" in cli("incident", "show", str(incident_id)).output


def test_ack_mitigate_resolve_and_reopen_record_the_user(cli, sqlite_store):
    incident_id = opened(sqlite_store)
    result = cli("incident", "ack", str(incident_id), "--note", "looking")
    assert (result.exit_code, result.output.strip()) == (0, f"incident {incident_id} is acknowledged")
    for verb, state in (("mitigate", "mitigated"), ("resolve", "resolved"), ("reopen", "triggered")):
        assert cli("incident", verb, str(incident_id)).exit_code == 0
        assert state_of(sqlite_store, incident_id) == state
    with sqlite_store.read() as s:
        ack = s.scalar(select(EventRow).where(EventRow.kind == "incident.acknowledged"))
    assert ack is not None and (ack.actor, ack.payload["note"]) == ("user:olga", "looking")


def test_a_refused_change_is_a_one_line_error(cli, sqlite_store):
    incident_id = opened(sqlite_store)
    result = cli("incident", "close", str(incident_id))
    assert result.exit_code == 1
    assert f"error: incident {incident_id} is triggered; it can go to" in result.output
    missing = cli("incident", "ack", "999")
    assert (missing.exit_code, missing.output.strip()) == (1, "error: no incident 999")


def test_closing_a_p1_needs_its_post_mortem_or_a_waiver_with_a_reason(cli, sqlite_store):
    incident_id = opened(sqlite_store)
    cli("incident", "resolve", str(incident_id))
    refused = cli("incident", "close", str(incident_id))
    assert refused.exit_code == 1 and "post-mortem is required" in refused.output
    no_reason = cli("incident", "close", str(incident_id), "--waive-postmortem")
    assert no_reason.exit_code == 1 and "say why" in no_reason.output
    closed = cli("incident", "close", str(incident_id), "--waive-postmortem", "--note", "test page")
    assert closed.exit_code == 0
    assert state_of(sqlite_store, incident_id) == "closed"


def test_assign_note_and_priority(cli, sqlite_store):
    incident_id = opened(sqlite_store, severity=Severity.warning)
    assert (
        cli("incident", "assign", str(incident_id), "rob").output.strip()
        == f"incident {incident_id} assigned to rob"
    )
    assert cli("incident", "note", str(incident_id), "restarted api-2").exit_code == 0
    result = cli("incident", "priority", str(incident_id), "P0", "--note", "every region")
    assert result.exit_code == 0 and f"incident {incident_id} is P0 now" in result.output
    detail = json.loads(cli("incident", "show", str(incident_id), "--json").output)
    assert (detail["priority"], detail["assignee"], detail["postmortem_required"]) == ("P0", "rob", True)
    assert [e["kind"] for e in detail["timeline"]][-3:] == [
        "incident.assigned",
        "incident.note",
        "incident.priority",
    ]
    assert cli("incident", "priority", str(incident_id), "P9").exit_code == 2  # not a priority
    for command in (["assign", "999", "rob"], ["note", "999", "x"], ["priority", "999", "P1"]):
        missing = cli("incident", *command)
        assert (missing.exit_code, missing.output.strip()) == (1, "error: no incident 999"), command


def test_alerts_lists_what_fired_and_where_it_went(cli, sqlite_store):
    first = fire(sqlite_store)
    assert first.row is not None and first.incident is not None
    result = cli("alerts")
    assert result.exit_code == 0 and "API answers [503]" in result.output
    lines = [json.loads(line) for line in cli("alerts", "--status", "firing", "--json").output.splitlines()]
    assert [(a["id"], a["incident_id"]) for a in lines] == [(first.row.id, first.incident.id)]
    assert cli("alerts", "--status", "resolved", "--json").output == ""
    assert cli("alerts", "--status", "asleep").exit_code == 1


def test_silence_add_list_and_expire(cli, sqlite_store):
    added = cli(
        "silence",
        "add",
        "--match",
        "target=api",
        "-m",
        "alertname=~Api.*",
        "--for",
        "2h",
        "--comment",
        "deploy",
        "--json",
    )
    assert added.exit_code == 0
    silence = json.loads(added.output)
    assert (silence["state"], silence["created_by"], silence["matchers"]) == (
        "active",
        "user:olga",
        ["target=api", "alertname=~Api.*"],
    )
    muted = fire(sqlite_store)
    assert muted.outcome == "muted"
    assert f"silence:{silence['id']}" in cli("alerts").output
    listed = cli("silence", "list")
    assert "target=api, alertname=~Api.*" in listed.output and "deploy" in listed.output
    assert cli("silence", "expire", str(silence["id"])).output.strip() == f"silence {silence['id']} expired"
    assert cli("silence", "list", "--json").output == ""
    assert json.loads(cli("silence", "list", "--all", "--json").output)["state"] == "expired"
    assert cli("silence", "expire", "999").exit_code == 1


def test_silence_add_until_a_time_and_its_mistakes(cli):
    until = (datetime.now(UTC) + timedelta(hours=3)).strftime("%Y-%m-%dT%H:%M:%S")
    ok = cli("silence", "add", "--match", "job=db", "--until", until, "--comment", "window")
    assert ok.exit_code == 0 and "active until" in ok.output
    both = cli("silence", "add", "-m", "a=b", "--for", "1h", "--until", until, "--comment", "x")
    assert both.exit_code == 1 and "exactly one of --for and --until" in both.output
    bad = cli("silence", "add", "-m", "nonsense", "--for", "1h", "--comment", "x")
    assert bad.exit_code == 1 and "is not a matcher" in bad.output
    bad_for = cli("silence", "add", "-m", "a=b", "--for", "soon", "--comment", "x")
    assert bad_for.exit_code == 1 and "is not a duration" in bad_for.output
    no_comment = cli("silence", "add", "-m", "a=b", "--for", "1h", "--comment", " ")
    assert no_comment.exit_code == 1 and "needs a comment" in no_comment.output
