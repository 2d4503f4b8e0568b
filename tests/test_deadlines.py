"""Response deadlines on both databases: a breach is recorded and alerted on exactly once, even with
two processes at it; answered incidents never breach; the scheduler loop records breaches."""

from __future__ import annotations

import threading
from datetime import timedelta

from sqlalchemy import func, select

from maintd.alerts.model import AlertIn, AlertStatus, Severity
from maintd.incidents import deadlines, service
from maintd.incidents.pipeline import ingest
from maintd.plan.incidents import IncidentSettings
from maintd.store.db import Store
from maintd.store.models import AlertRow, EventRow, IncidentRow
from tests.conftest import T0

SETTINGS = IncidentSettings()  # P1: 30 minutes to acknowledge
LATE = T0 + timedelta(minutes=31)


def fire(store: Store, settings: IncidentSettings = SETTINGS, **labels: str) -> int:
    labels = {"alertname": "ApiDown", "target": "api", **labels}
    with store.write() as s:
        (d,) = ingest(
            s,
            [AlertIn(source="native", labels=labels, severity=Severity.critical)],
            now=T0,
            settings=settings,
            actor="test",
        )
        assert d.incident is not None
        return d.incident.id


def breaches_recorded(store: Store) -> list[EventRow]:
    with store.read() as s:
        return list(s.scalars(select(EventRow).where(EventRow.kind == "incident.deadline_breached")))


def breach_alerts(store: Store) -> list[AlertRow]:
    with store.read() as s:
        return list(s.scalars(select(AlertRow).where(AlertRow.source == deadlines.SOURCE)))


def get(store: Store, incident_id: int) -> IncidentRow:
    with store.read() as s:
        row = s.get(IncidentRow, incident_id)
        assert row is not None
        return row


def test_nothing_is_breached_before_the_deadline(store: Store):
    incident_id = fire(store)
    with store.write() as s:
        assert deadlines.next_breach_at(s) == T0 + timedelta(minutes=30)
        assert deadlines.breach_due(s, T0 + timedelta(minutes=29), SETTINGS) == []
    assert get(store, incident_id).breached_at is None


def test_an_unacknowledged_incident_breaches_once_with_an_event_and_an_alert_of_its_own(store: Store):
    incident_id = fire(store)
    with store.write() as s:
        (breach,) = deadlines.breach_due(s, LATE, SETTINGS)
    with store.write() as s:
        assert deadlines.breach_due(s, LATE + timedelta(minutes=5), SETTINGS) == []
        # Next due: the breach incident's own deadline (it is P1 too), not this one's again.
        assert deadlines.next_breach_at(s) == LATE + timedelta(minutes=30)
    assert get(store, incident_id).breached_at == LATE
    (event,) = breaches_recorded(store)
    assert (event.subject, event.actor) == (f"incident:{incident_id}", "system")
    assert event.payload == {
        "priority": "P1",
        "ack_deadline": (T0 + timedelta(minutes=30)).isoformat(),
        "allowed": "30m",
        "late_seconds": 60,
        "alert": breach.alert_id,
        "alert_incident": breach.alert_incident_id,
    }
    (alert,) = breach_alerts(store)
    assert alert.id == breach.alert_id
    assert alert.labels == {
        "alertname": "IncidentAckDeadlineBreached",
        "incident": str(incident_id),
        "priority": "P1",
    }
    assert (alert.severity, alert.priority, alert.status) == ("critical", "P1", "firing")
    # The alert about the incident opened an incident of its own; it did not join the one it is about.
    assert breach.alert_incident_id is not None and breach.alert_incident_id != incident_id
    assert alert.incident_id == breach.alert_incident_id


def test_the_breach_alert_stays_apart_even_when_the_plan_groups_by_labels_neither_has(store: Store):
    by_service = IncidentSettings(group_by=["service"])  # both alerts key on "service=": the same group
    incident_id = fire(store, by_service)
    with store.write() as s:
        (breach,) = deadlines.breach_due(s, LATE, by_service)
    assert breach.alert_incident_id not in (None, incident_id)


def test_two_processes_with_the_same_due_list_record_the_breach_once(store: Store):
    incident_id = fire(store)
    with store.read() as s:  # process B reads what is due...
        seen_by_b = deadlines.due(s, LATE)
    assert seen_by_b == [incident_id]
    with store.write() as s:  # ...process A breaches it first...
        assert len(deadlines.breach_due(s, LATE, SETTINGS)) == 1
    with store.write() as s:  # ...and B's conditional update then changes nothing.
        assert deadlines.claim(s, seen_by_b, LATE, SETTINGS) == []
    assert len(breaches_recorded(store)) == 1
    assert len(breach_alerts(store)) == 1
    assert get(store, incident_id).breached_at == LATE


def test_two_processes_racing_record_each_breach_once(store: Store):
    ids = [fire(store, target=f"api{i}") for i in range(5)]
    start = threading.Barrier(2)
    results: list[int] = []
    errors: list[BaseException] = []

    def process() -> None:
        try:
            start.wait(timeout=10)
            with store.write() as s:
                results.append(len(deadlines.breach_due(s, LATE, SETTINGS)))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=process) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert errors == []
    assert sum(results) == 5
    assert sorted(int(e.subject.split(":")[1]) for e in breaches_recorded(store)) == ids
    assert len(breach_alerts(store)) == 5


def test_an_acknowledged_incident_never_breaches(store: Store):
    incident_id = fire(store)
    with store.write() as s:
        service.acknowledge(
            s, incident_id=incident_id, actor="user:rob", now=T0 + timedelta(minutes=5), settings=SETTINGS
        )
    with store.write() as s:
        assert deadlines.next_breach_at(s) is None
        assert deadlines.breach_due(s, LATE, SETTINGS) == []
    assert breaches_recorded(store) == [] and breach_alerts(store) == []


def test_an_incident_acknowledged_after_listing_but_before_the_claim_is_not_breached(store: Store):
    incident_id = fire(store)
    with store.read() as s:
        due = deadlines.due(s, LATE)
    with store.write() as s:
        service.acknowledge(s, incident_id=incident_id, actor="user:rob", now=LATE, settings=SETTINGS)
    with store.write() as s:
        assert deadlines.claim(s, due, LATE, SETTINGS) == []
    assert breaches_recorded(store) == []


def test_answering_a_breached_incident_resolves_its_breach_alert_and_incident(store: Store):
    incident_id = fire(store)
    with store.write() as s:
        (breach,) = deadlines.breach_due(s, LATE, SETTINGS)
    with store.write() as s:
        service.acknowledge(
            s, incident_id=incident_id, actor="user:rob", now=LATE + timedelta(minutes=2), settings=SETTINGS
        )
    (alert,) = breach_alerts(store)
    assert alert.status == "resolved"
    assert breach.alert_incident_id is not None
    assert get(store, breach.alert_incident_id).state == "resolved"
    assert get(store, incident_id).breached_at == LATE  # the breach stays on record


def test_a_breach_incident_that_breaches_raises_no_further_alert(store: Store):
    fire(store)
    with store.write() as s:
        (first,) = deadlines.breach_due(s, LATE, SETTINGS)
    with store.write() as s:  # nobody answers the breach incident either (P1: 30 more minutes)
        (second,) = deadlines.breach_due(s, LATE + timedelta(minutes=31), SETTINGS)
    assert second.incident_id == first.alert_incident_id
    assert (second.alert_id, second.alert_incident_id) == (None, None)
    assert len(breach_alerts(store)) == 1
    assert breaches_recorded(store)[-1].payload["alert"] is None


def test_a_reopened_incident_can_breach_its_new_deadline(store: Store):
    incident_id = fire(store)
    with store.write() as s:
        deadlines.breach_due(s, LATE, SETTINGS)
    with store.write() as s:
        service.acknowledge(s, incident_id=incident_id, actor="user:rob", now=LATE, settings=SETTINGS)
    reopened = LATE + timedelta(hours=1)
    with store.write() as s:
        service.reopen(s, incident_id=incident_id, actor="user:rob", now=reopened, settings=SETTINGS)
    with store.write() as s:
        assert deadlines.next_breach_at(s) == reopened + timedelta(minutes=30)
        (again,) = deadlines.breach_due(s, reopened + timedelta(minutes=30), SETTINGS)
    assert again.incident_id == incident_id
    assert len(breaches_recorded(store)) == 2
    assert [a.status for a in breach_alerts(store)] == ["resolved", "firing"]


PLAN = "incidents: {deadlines: {P0: 5m, P1: 10m, P2: 1h, P3: 1d}}\n"


def test_the_scheduler_loop_records_breaches_with_the_plans_deadlines(store: Store, write_plan, make_engine):  # type: ignore[no-untyped-def]
    engine = make_engine(store, write_plan(PLAN))
    assert engine.reload().ok
    incident_id = fire(store, engine.loaded.plan.incidents)
    orders, wake_at = engine.tick(engine.clock.now())
    assert orders == [] and wake_at == T0 + timedelta(minutes=10)  # sleeps until the deadline
    assert breaches_recorded(store) == []
    engine.clock.advance(timedelta(minutes=10))
    engine.tick(engine.clock.now())
    assert get(store, incident_id).breached_at == T0 + timedelta(minutes=10)
    engine.clock.advance(timedelta(seconds=5))
    engine.tick(engine.clock.now())
    assert len(breaches_recorded(store)) == 1
    with store.read() as s:
        assert s.scalar(select(func.count()).select_from(AlertRow).where(AlertRow.source == "maintd")) == 1


def test_an_incident_resolved_by_its_alerts_also_resolves_its_breach_alert(store: Store):
    incident_id = fire(store)
    with store.write() as s:
        deadlines.breach_due(s, LATE, SETTINGS)
    with store.write() as s:
        resolved = AlertIn(
            source="native",
            labels={"alertname": "ApiDown", "target": "api"},
            severity=Severity.critical,
            status=AlertStatus.resolved,
        )
        ingest(s, [resolved], now=LATE + timedelta(minutes=1), settings=SETTINGS, actor="test")
    assert get(store, incident_id).state == "resolved"
    (breach_alert,) = breach_alerts(store)
    assert breach_alert.status == "resolved"
    assert breach_alert.incident_id is not None
    assert get(store, breach_alert.incident_id).state == "resolved"


def test_a_more_urgent_alert_joining_an_incident_brings_its_deadline_forward(store: Store):
    incident_id = fire(store, severity_label="x")  # P1: 30 minutes
    with store.write() as s:
        urgent = AlertIn(
            source="native",
            labels={"alertname": "ApiDown", "target": "api", "priority": "P0", "instance": "b"},
            severity=Severity.critical,
        )
        ingest(s, [urgent], now=T0 + timedelta(minutes=5), settings=SETTINGS, actor="test")
    incident = get(store, incident_id)
    assert incident.priority == "P0"
    assert incident.ack_deadline == T0 + timedelta(minutes=15)  # P0's deadline, counted from opening
