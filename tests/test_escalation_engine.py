"""Escalation through the scheduler loop: each level paged by a tick, nothing paged twice by a
restarted process, and the auditor's alert when steps are more than a minute overdue."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from maintd.incidents.auditor import ALERTNAME, audit
from maintd.store.db import Store
from maintd.store.models import AlertRow, IncidentRow
from tests.conftest import T0
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
