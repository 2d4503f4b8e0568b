"""Escalation through the scheduler loop: each level paged by a tick, nothing paged twice by a
restarted process, and the auditor's alert when steps are more than a minute overdue."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from maintd import views
from maintd.cli import app
from maintd.engine import Engine
from maintd.incidents import service
from maintd.incidents.auditor import ALERTNAME, audit
from maintd.store.db import Store
from maintd.store.models import AlertRow, IncidentRow
from tests.conftest import T0
from tests.personas import as_
from tests.test_escalation import events, fire, minutes, open_incident, pages, plan, started


def test_the_scheduler_loop_pages_each_level_and_sleeps_until_the_next(store: Store, write_plan, make_engine):
    engine = started(store, write_plan, make_engine, plan())
    open_incident(store, engine)
    orders, wake_at = engine.tick(engine.clock.now())
    assert orders == [] and wake_at == minutes(15)  # L1 paged; asleep until L2
    assert pages(store) == [("c0.l1", "person:bob"), ("c0.l1", "person:cho")]
    engine.clock.advance(timedelta(minutes=15))
    _, wake_at = engine.tick(engine.clock.now())
    assert wake_at == minutes(30)  # the P1 response deadline and L3 fall together
    assert len(pages(store)) == 4


def test_a_restarted_engine_fires_nothing_twice(store: Store, write_plan, make_engine):
    engine = started(store, write_plan, make_engine, plan())
    open_incident(store, engine)
    engine.tick(engine.clock.now())
    engine.clock.advance(timedelta(minutes=15))
    engine.tick(engine.clock.now())
    again = make_engine(store, write_plan(plan()))  # a new process on the same database
    assert again.reload().ok
    again.tick(again.clock.now())
    assert len(pages(store)) == 4
    assert len(events(store, "escalation.fired")) == 2


def overdue_alerts(store: Store) -> list[AlertRow]:
    with store.read() as s:
        return list(s.scalars(select(AlertRow).where(AlertRow.labels["alertname"].as_string() == ALERTNAME)))


def test_the_auditor_raises_an_alert_while_a_step_is_a_minute_overdue_and_resolves_it_once_fired(
    store: Store, write_plan, make_engine
):
    engine = started(store, write_plan, make_engine, plan())
    open_incident(store, engine)
    settings = engine.loaded.plan.incidents
    with store.write() as s:
        assert audit(s, T0 + timedelta(seconds=60), settings=settings) is False  # late, not yet a minute
    with store.write() as s:
        assert audit(s, T0 + timedelta(seconds=61), settings=settings) is True
    (alert,) = overdue_alerts(store)
    assert (alert.status, alert.severity, alert.source) == ("firing", "critical", "maintd")
    assert alert.summary == "escalation step c0.l1 of incident:1 is 61 s overdue: pages are not going out"
    assert alert.incident_id is not None and alert.incident_id != 1  # an incident of its own
    fire(store, engine, T0 + timedelta(seconds=62))
    with store.write() as s:
        assert audit(s, T0 + timedelta(seconds=63), settings=settings) is False
    (alert,) = overdue_alerts(store)
    assert alert.status == "resolved"
    with store.read() as s:
        own = s.get(IncidentRow, alert.incident_id)
        assert own is not None and own.state == "resolved"


def test_a_scheduler_loop_that_was_away_records_that_its_pages_were_late(
    store: Store, write_plan, make_engine
):
    engine = started(store, write_plan, make_engine, plan())
    engine.tick(engine.clock.now())  # the auditor's first look: nothing is late
    open_incident(store, engine)
    engine.clock.advance(timedelta(minutes=2))  # the loop stalled for two minutes
    _, wake_at = engine.tick(engine.clock.now())
    assert ("c0.l1", "person:bob") in pages(store)  # paged late, but paged
    (alert,) = overdue_alerts(store)
    assert alert.status == "resolved"  # raised at the tick's start, resolved when it caught up
    assert wake_at == minutes(15)
    engine.clock.advance(timedelta(seconds=5))
    engine.tick(engine.clock.now())
    assert len(overdue_alerts(store)) == 1  # nothing raised again


# -- the read side ---------------------------------------------------------------


@pytest.fixture
def engine(store, write_plan, make_engine) -> Engine:  # type: ignore[no-untyped-def]
    return started(store, write_plan, make_engine, plan())


def test_the_api_shows_the_policy_and_each_steps_fate(engine: Engine, client, tokens):  # type: ignore[no-untyped-def]
    incident_id = open_incident(engine.store, engine)
    fire(engine.store, engine, T0)
    with engine.store.write() as s:
        service.acknowledge(
            s,
            incident_id=incident_id,
            actor="user:bob",
            now=minutes(3),
            settings=engine.loaded.plan.incidents,
        )
    answer = client.get(f"/api/v1/incidents/{incident_id}", headers=as_(tokens, "vera"))
    assert answer.status_code == 200
    escalation = answer.json()["escalation"]
    assert escalation["policy"] == "platform" and escalation["repeat"] == 0
    assert escalation["levels"][0]["notify"] == ["schedule:platform/primary", "schedule:platform/secondary"]
    assert escalation["levels"][1] == {"after": "15m", "notify": ["role:team-lead", "role:platform-manager"]}
    assert [(s["step"], s["level"], s["state"]) for s in escalation["steps"]] == [
        ("c0.l1", 1, "fired"),
        ("c0.l2", 2, "cancelled"),
        ("c0.l3", 3, "cancelled"),
    ]


def test_incident_show_prints_the_escalation(engine: Engine, monkeypatch):  # type: ignore[no-untyped-def]
    incident_id = open_incident(engine.store, engine)
    fire(engine.store, engine, T0)
    monkeypatch.setenv("MAINTD_DATABASE_URL", engine.store.url)
    result = CliRunner().invoke(app, ["incident", "show", str(incident_id)], catch_exceptions=False)
    assert result.exit_code == 0
    assert "escalation: platform" in result.output
    assert "role:team-lead, role:platform-manager" in result.output
    assert "escalation.fired" in result.output  # and in the timeline
    detail = json.loads(
        CliRunner()
        .invoke(app, ["incident", "show", str(incident_id), "--json"], catch_exceptions=False)
        .output
    )
    assert [s["state"] for s in detail["escalation"]["steps"]] == ["fired", "pending", "pending"]


def test_an_incident_without_a_policy_shows_no_escalation(store: Store, write_plan, make_engine):  # type: ignore[no-untyped-def]
    engine = started(store, write_plan, make_engine, "people: []\n")
    incident_id = open_incident(store, engine)
    with store.read() as s:
        found = service.get_incident(s, incident_id=incident_id)
    assert views.incident_detail(found.incident, found.alerts, found.timeline, found.steps).escalation is None
