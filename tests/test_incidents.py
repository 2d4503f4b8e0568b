"""Incident service on both databases: the state machine table, post-mortems, priority and deadline,
assignment, notes, listing and the timeline."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from maintd.alerts.model import AlertIn, AlertStatus, Severity
from maintd.incidents import service
from maintd.incidents.pipeline import ingest
from maintd.incidents.states import IncidentError, State
from maintd.plan.incidents import IncidentSettings, Priority
from maintd.store.db import Store
from maintd.store.models import EventRow, IncidentRow
from tests.conftest import T0

SETTINGS = IncidentSettings()  # the seed's deadlines: P0 15m, P1 30m, P2 2h, P3 24h
ACTOR = "user:olga"

# What each action asks for, and which states allow it: written out, not read from TRANSITIONS.
ACTIONS = {
    "acknowledge": service.acknowledge,
    "mitigate": service.mitigate,
    "resolve": service.resolve,
    "reopen": service.reopen,
    "close": service.close,
}
TARGET = {
    "acknowledge": "acknowledged",
    "mitigate": "mitigated",
    "resolve": "resolved",
    "reopen": "triggered",
    "close": "closed",
}
ALLOWED = {
    "triggered": {"acknowledge", "mitigate", "resolve"},
    "acknowledged": {"reopen", "mitigate", "resolve"},
    "mitigated": {"reopen", "resolve"},
    "resolved": {"reopen", "close"},
    "closed": set(),
}
# How to get an incident into each state from triggered.
PATH = {
    "triggered": [],
    "acknowledged": ["acknowledge"],
    "mitigated": ["mitigate"],
    "resolved": ["resolve"],
    "closed": ["resolve", "close"],
}


def fire(store: Store, now=T0, severity=Severity.error, **labels: str) -> int:  # type: ignore[no-untyped-def]
    """Ingest one alert and return the incident it opened or joined."""
    labels = {"alertname": "DiskFull", "target": "db1", **labels}
    with store.write() as s:
        (delivery,) = ingest(
            s,
            [AlertIn(source="native", labels=labels, severity=severity)],
            now=now,
            settings=SETTINGS,
            actor="test",
        )
        assert delivery.incident is not None
        return delivery.incident.id


def act(store: Store, action: str, incident_id: int, now=T0, **extra):  # type: ignore[no-untyped-def]
    with store.write() as s:
        row = ACTIONS[action](s, incident_id=incident_id, actor=ACTOR, now=now, settings=SETTINGS, **extra)
        return row.state


def incident(store: Store, incident_id: int) -> IncidentRow:
    with store.read() as s:
        row = s.get(IncidentRow, incident_id)
        assert row is not None
        return row


def events_of(store: Store, incident_id: int) -> list[EventRow]:
    with store.read() as s:
        return list(
            s.scalars(
                select(EventRow).where(EventRow.subject == f"incident:{incident_id}").order_by(EventRow.id)
            )
        )


def test_the_table_in_this_test_covers_every_state():
    assert set(ALLOWED) == {s.value for s in State} == set(PATH)


@pytest.mark.parametrize("state", list(ALLOWED))
@pytest.mark.parametrize("action", list(ACTIONS))
def test_each_action_is_allowed_or_refused_by_state(store: Store, state: str, action: str):
    incident_id = fire(store)  # P2: no post-mortem needed to close
    for step in PATH[state]:
        act(store, step, incident_id)
    assert incident(store, incident_id).state == state
    before = len(events_of(store, incident_id))
    later = T0 + timedelta(minutes=5)
    if action in ALLOWED[state]:
        assert act(store, action, incident_id, later, note="because") == TARGET[action]
        last = events_of(store, incident_id)[-1]
        assert (last.kind, last.actor, last.at) == (f"incident.{TARGET[action]}", ACTOR, later)
        assert last.payload == {"from": state, "to": TARGET[action], "note": "because"}
    else:
        with pytest.raises(IncidentError, match=f"incident {incident_id} is {state}"):
            act(store, action, incident_id, later)
        assert incident(store, incident_id).state == state
        assert len(events_of(store, incident_id)) == before


def test_acknowledging_stamps_the_time_once(store: Store):
    incident_id = fire(store)
    act(store, "acknowledge", incident_id, T0 + timedelta(minutes=3))
    act(store, "reopen", incident_id, T0 + timedelta(minutes=4))
    act(store, "acknowledge", incident_id, T0 + timedelta(minutes=9))
    assert incident(store, incident_id).acknowledged_at == T0 + timedelta(minutes=3)


def test_a_p1_needs_its_post_mortem_before_closing(store: Store):
    incident_id = fire(store, severity=Severity.critical)
    assert incident(store, incident_id).priority == "P1"
    assert incident(store, incident_id).postmortem_required
    act(store, "resolve", incident_id)
    with pytest.raises(IncidentError, match="post-mortem is required"):
        act(store, "close", incident_id)
    assert incident(store, incident_id).state == "resolved"


def test_a_waived_post_mortem_needs_a_reason_and_is_recorded(store: Store):
    incident_id = fire(store, severity=Severity.critical)
    act(store, "resolve", incident_id)
    with pytest.raises(IncidentError, match="say why"):
        act(store, "close", incident_id, waive_postmortem=True)
    assert act(store, "close", incident_id, waive_postmortem=True, note="duplicate of 12") == "closed"
    last = events_of(store, incident_id)[-1]
    assert last.kind == "incident.closed"
    assert last.payload["postmortem_waived"] is True
    assert last.payload["note"] == "duplicate of 12"


def test_a_p2_closes_without_a_post_mortem(store: Store):
    incident_id = fire(store)
    act(store, "resolve", incident_id)
    assert act(store, "close", incident_id) == "closed"
    assert "postmortem_waived" not in events_of(store, incident_id)[-1].payload


def test_raising_the_priority_moves_the_deadline_from_the_opening_and_requires_a_post_mortem(store: Store):
    incident_id = fire(store, severity=Severity.warning)  # P3: 24h to acknowledge
    assert incident(store, incident_id).ack_deadline == T0 + timedelta(hours=24)
    with store.write() as s:
        service.change_priority(
            s,
            incident_id=incident_id,
            priority=Priority.P1,
            actor=ACTOR,
            now=T0 + timedelta(minutes=10),
            settings=SETTINGS,
            note="payments are failing",
        )
    row = incident(store, incident_id)
    assert (row.priority, row.ack_deadline, row.postmortem_required) == (
        "P1",
        T0 + timedelta(minutes=30),
        True,
    )
    last = events_of(store, incident_id)[-1]
    assert last.kind == "incident.priority"
    assert last.payload == {
        "from": "P3",
        "to": "P1",
        "ack_deadline": (T0 + timedelta(minutes=30)).isoformat(),
        "postmortem_required": True,
        "note": "payments are failing",
    }


def test_lowering_the_priority_keeps_the_post_mortem_required(store: Store):
    incident_id = fire(store, severity=Severity.critical)
    with store.write() as s:
        service.change_priority(
            s, incident_id=incident_id, priority=Priority.P3, actor=ACTOR, now=T0, settings=SETTINGS
        )
    row = incident(store, incident_id)
    assert (row.priority, row.ack_deadline, row.postmortem_required) == ("P3", T0 + timedelta(hours=24), True)


def test_an_acknowledged_incident_keeps_its_deadline_when_its_priority_changes(store: Store):
    incident_id = fire(store)
    act(store, "acknowledge", incident_id)
    with store.write() as s:
        service.change_priority(
            s, incident_id=incident_id, priority=Priority.P0, actor=ACTOR, now=T0, settings=SETTINGS
        )
    assert incident(store, incident_id).ack_deadline == T0 + timedelta(hours=2)
    assert "ack_deadline" not in events_of(store, incident_id)[-1].payload


def test_a_reopened_incident_gets_a_fresh_deadline_counted_from_its_reopening(store: Store):
    incident_id = fire(store)  # P2: 2h
    act(store, "resolve", incident_id, T0 + timedelta(hours=1))
    act(store, "reopen", incident_id, T0 + timedelta(hours=5))
    assert incident(store, incident_id).ack_deadline == T0 + timedelta(hours=7)
    with store.write() as s:
        service.change_priority(
            s,
            incident_id=incident_id,
            priority=Priority.P1,
            actor=ACTOR,
            now=T0 + timedelta(hours=6),
            settings=SETTINGS,
        )
    assert incident(store, incident_id).ack_deadline == T0 + timedelta(hours=5, minutes=30)


def test_a_priority_change_to_the_same_priority_or_of_a_closed_incident_is_refused(store: Store):
    incident_id = fire(store)
    with store.write() as s, pytest.raises(IncidentError, match="already P2"):
        service.change_priority(
            s, incident_id=incident_id, priority=Priority.P2, actor=ACTOR, now=T0, settings=SETTINGS
        )
    act(store, "resolve", incident_id)
    act(store, "close", incident_id)
    with store.write() as s, pytest.raises(IncidentError, match="closed"):
        service.change_priority(
            s, incident_id=incident_id, priority=Priority.P0, actor=ACTOR, now=T0, settings=SETTINGS
        )


def test_reassigning_records_who_had_it(store: Store):
    incident_id = fire(store)
    with store.write() as s:
        service.assign(s, incident_id=incident_id, assignee="rob", actor=ACTOR, now=T0)
    with store.write() as s:
        service.assign(s, incident_id=incident_id, assignee="tess", actor=ACTOR, now=T0, note="handover")
    assert incident(store, incident_id).assignee == "tess"
    assigned = [e.payload for e in events_of(store, incident_id) if e.kind == "incident.assigned"]
    assert assigned == [{"from": None, "to": "rob"}, {"from": "rob", "to": "tess", "note": "handover"}]
    with store.write() as s, pytest.raises(IncidentError, match="already assigned to tess"):
        service.assign(s, incident_id=incident_id, assignee="tess", actor=ACTOR, now=T0)
    with store.write() as s, pytest.raises(IncidentError, match="say who"):
        service.assign(s, incident_id=incident_id, assignee="  ", actor=ACTOR, now=T0)


def test_notes_go_to_the_timeline_even_after_closing(store: Store):
    incident_id = fire(store)
    act(store, "resolve", incident_id)
    act(store, "close", incident_id)
    with store.write() as s:
        service.add_note(
            s, incident_id=incident_id, note="root cause: a full WAL volume", actor=ACTOR, now=T0
        )
    last = events_of(store, incident_id)[-1]
    assert (last.kind, last.actor, last.payload) == (
        "incident.note",
        ACTOR,
        {"note": "root cause: a full WAL volume"},
    )
    with store.write() as s, pytest.raises(IncidentError, match="needs some text"):
        service.add_note(s, incident_id=incident_id, note=" ", actor=ACTOR, now=T0)


def test_an_unknown_incident_is_not_found(store: Store):
    with store.write() as s:
        for action in ACTIONS.values():
            with pytest.raises(service.IncidentNotFound, match="no incident 404"):
                action(s, incident_id=404, actor=ACTOR, now=T0, settings=SETTINGS)
        with pytest.raises(service.IncidentNotFound):
            service.get_incident(s, incident_id=404)
        with pytest.raises(service.IncidentNotFound):
            service.add_note(s, incident_id=404, note="x", actor=ACTOR, now=T0)


def test_the_timeline_holds_the_incident_and_its_alerts_events_in_time_order(store: Store):
    incident_id = fire(store, now=T0)
    other = fire(store, now=T0 + timedelta(minutes=1), target="db2")  # another incident: not in the timeline
    assert fire(store, now=T0 + timedelta(minutes=2), instance="b") == incident_id  # joins: same group
    act(store, "acknowledge", incident_id, T0 + timedelta(minutes=3), note="looking")
    with store.write() as s:
        service.add_note(
            s, incident_id=incident_id, note="WAL volume", actor=ACTOR, now=T0 + timedelta(minutes=4)
        )
        ingest(
            s,
            [
                AlertIn(
                    source="native",
                    labels={"alertname": "DiskFull", "target": "db1"},
                    status=AlertStatus.resolved,
                ),
                AlertIn(
                    source="native",
                    labels={"alertname": "DiskFull", "target": "db1", "instance": "b"},
                    status=AlertStatus.resolved,
                ),
            ],
            now=T0 + timedelta(minutes=5),
            settings=SETTINGS,
            actor="test",
        )
    with store.read() as s:
        detail = service.get_incident(s, incident_id=incident_id)
    first, second = (a.id for a in detail.alerts)
    assert [(e.kind, e.subject) for e in detail.timeline] == [
        ("incident.opened", f"incident:{incident_id}"),
        ("alert.firing", f"alert:{first}"),
        ("alert.firing", f"alert:{second}"),
        ("incident.acknowledged", f"incident:{incident_id}"),
        ("incident.note", f"incident:{incident_id}"),
        ("alert.resolved", f"alert:{first}"),
        ("alert.resolved", f"alert:{second}"),
        ("incident.resolved", f"incident:{incident_id}"),
    ]
    assert [e.at for e in detail.timeline] == sorted(e.at for e in detail.timeline)
    assert all(e.subject != f"incident:{other}" for e in detail.timeline)


def test_the_list_filters_by_state_priority_and_time_newest_first(store: Store):
    p2 = fire(store, now=T0)
    p1 = fire(store, now=T0 + timedelta(minutes=1), severity=Severity.critical, target="db2")
    p3 = fire(store, now=T0 + timedelta(minutes=2), severity=Severity.warning, target="db3")
    act(store, "resolve", p3)

    def ids(**filters):  # type: ignore[no-untyped-def]
        with store.read() as s:
            return [row.id for row in service.list_incidents(s, **filters)]

    assert ids() == [p3, p1, p2]
    assert ids(state="open") == [p1, p2]
    assert ids(state="resolved") == [p3]
    assert ids(priority=Priority.P1) == [p1]
    assert ids(since=T0 + timedelta(minutes=1)) == [p3, p1]
    assert ids(limit=1) == [p3]
    with pytest.raises(ValueError, match="unknown state"):
        ids(state="sleeping")


def test_the_settings_come_from_the_stored_plan(store: Store, write_plan, make_engine):  # type: ignore[no-untyped-def]
    with store.read() as s:
        assert service.stored_settings(s) == IncidentSettings()
    engine = make_engine(store, write_plan("incidents: {deadlines: {P0: 5m, P1: 10m, P2: 1h, P3: 1d}}\n"))
    assert engine.reload().ok
    with store.read() as s:
        assert service.stored_settings(s).deadlines[Priority.P1] == timedelta(minutes=10)
