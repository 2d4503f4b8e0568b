"""Escalation on both databases: the seed's three levels paged on time, stopped by an answer, repeated,
delayed by group_wait, kept as they were when the incident opened, resolved to people at firing time."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import select, update

from maintd.alerts.model import AlertIn, AlertStatus, Severity
from maintd.engine import Engine
from maintd.incidents import service
from maintd.incidents.pipeline import ingest
from maintd.notify.outbox import SENT
from maintd.signing import verify
from maintd.store.db import Store
from maintd.store.models import EventRow, IncidentRow, NotificationRow, TimerRow
from maintd.timers import fire_due
from tests.conftest import T0

PEOPLE = """
people:
  - {name: ann, email: ann@example.com, notify: ["mailto://ann@example.com"]}
  - {name: bob, email: bob@example.com, notify: ["mailto://bob@example.com"]}
  - {name: cho, email: cho@example.com, notify: ["mailto://cho@example.com"]}
  - {name: lee, email: lee@example.com, notify: ["mailto://lee@example.com"], roles: [team-lead]}
  - {name: max, email: max@example.com, notify: ["mailto://max@example.com"], roles: [platform-manager]}
  - {name: dora, email: dora@example.com, notify: ["mailto://dora@example.com"], roles: [director]}
  - {name: vic, email: vic@example.com, notify: ["mailto://vic@example.com"], roles: [vp]}
schedules:
  - name: platform
    layers:   # weekly, handing off Friday 17:00 UTC: bob and cho until T0's evening, then cho and ann
      - {name: primary, rotation: {members: [ann, bob, cho], start: "2026-01-02"}}
      - {name: secondary, rotation: {members: [bob, cho, ann], start: "2026-01-02"}}
      - {name: office, rotation: {members: [ann], start: "2026-01-02"}, restrictions: ["Mon-Fri 09:00-17:00"]}
channels:
  - {name: ops-chat, url: "json://127.0.0.1:9/hook"}
"""

SEED_POLICY = """
escalation_policies:
  - name: platform
    levels:
      - {after: 0m, notify: [{schedule: platform, layer: primary}, {schedule: platform, layer: secondary}]}
      - {after: 15m, notify: [{role: team-lead}, {role: platform-manager}]}
      - {after: 30m, notify: [{role: director}, {role: vp}]}
    repeat: {repeat}
  - name: chat-first
    levels:
      - {after: 0m, notify: [{schedule: platform, layer: office}]}
      - {after: 10m, notify: [{channel: ops-chat}, {person: lee}]}
"""


def plan(repeat: int = 0, group_wait: str = "0s", more: str = "") -> str:
    incidents = f"""
incidents:
  escalation_policy: platform
  group_wait: {group_wait}
  rules:
    - {{match: {{team: chat}}, priority: P2, escalation_policy: chat-first}}
"""
    return PEOPLE + SEED_POLICY.replace("{repeat}", str(repeat)) + incidents + more


def started(
    store: Store, write_plan: Callable[..., Path], make_engine: Callable[..., Engine], text: str
) -> Engine:
    engine = make_engine(store, write_plan(text), public_url="https://maintd.example")
    assert engine.reload().ok, engine.last_reload
    return engine


def open_incident(store: Store, engine: Engine, at: datetime = T0, **labels: str) -> int:
    assert engine.loaded is not None
    alert = AlertIn(
        source="native",
        labels={"alertname": "ApiDown", "target": "api", **labels},
        annotations={"runbook_url": "https://runbooks.example/api-down"},
        severity=Severity.critical,
        summary="API is down",
    )
    with store.write() as s:
        (d,) = ingest(s, [alert], now=at, settings=engine.loaded.plan.incidents, actor="test")
        assert d.incident is not None
        return d.incident.id


def fire(store: Store, engine: Engine, at: datetime) -> list[str]:
    """Fire what is due at ``at`` (again while a level brought the next one forward); the steps fired."""
    assert engine.loaded is not None
    steps: list[str] = []
    while True:
        with store.write() as s:
            fired = fire_due(s, at, owner="test", handlers=engine.timer_handlers(engine.loaded))
        if not fired:
            return steps
        steps += [f.step for f in fired]


def pages(store: Store, state: str = "triggered") -> list[tuple[str, str]]:
    """(step, recipient) of every page of ``state`` not cancelled, in the order queued."""
    with store.read() as s:
        rows = s.execute(
            select(NotificationRow.step, NotificationRow.recipient)
            .where(NotificationRow.state == state, NotificationRow.status != "cancelled")
            .order_by(NotificationRow.id)
        )
        return [(r.step, r.recipient) for r in rows]


def events(store: Store, kind: str) -> list[EventRow]:
    with store.read() as s:
        return list(s.scalars(select(EventRow).where(EventRow.kind == kind).order_by(EventRow.id)))


def timers_of(store: Store, incident_id: int) -> list[TimerRow]:
    with store.read() as s:
        return list(
            s.scalars(
                select(TimerRow).where(TimerRow.subject == f"incident:{incident_id}").order_by(TimerRow.id)
            )
        )


def minutes(n: float) -> datetime:
    return T0 + timedelta(minutes=n)


def test_a_p1_pages_primary_and_secondary_then_team_lead_and_manager_at_15m_then_director_and_vp_at_30m(
    store: Store, write_plan, make_engine
):
    engine = started(store, write_plan, make_engine, plan())
    incident_id = open_incident(store, engine)
    assert fire(store, engine, T0) == ["c0.l1"]
    assert pages(store) == [("c0.l1", "person:bob"), ("c0.l1", "person:cho")]
    assert fire(store, engine, minutes(14)) == []
    assert fire(store, engine, minutes(15)) == ["c0.l2"]
    assert pages(store)[2:] == [("c0.l2", "person:lee"), ("c0.l2", "person:max")]
    assert fire(store, engine, minutes(30)) == ["c0.l3"]
    assert pages(store)[4:] == [("c0.l3", "person:dora"), ("c0.l3", "person:vic")]
    assert [e.payload["level"] for e in events(store, "escalation.fired")] == [1, 2, 3]
    with store.read() as s:
        incident = s.get(IncidentRow, incident_id)
        assert incident is not None and incident.escalation_policy == "platform"


def test_acknowledging_at_10_minutes_stops_the_escalation(store: Store, write_plan, make_engine):
    engine = started(store, write_plan, make_engine, plan())
    incident_id = open_incident(store, engine)
    fire(store, engine, T0)
    with store.write() as s:
        s.execute(
            update(NotificationRow).where(NotificationRow.recipient == "person:bob").values(status=SENT)
        )
    with store.write() as s:
        service.acknowledge(
            s,
            incident_id=incident_id,
            actor="user:bob",
            now=minutes(10),
            settings=engine.loaded.plan.incidents,
        )
    assert fire(store, engine, minutes(60)) == []
    assert pages(store) == [("c0.l1", "person:bob")]  # cho's page was not out yet: cancelled
    assert [t.cancelled_at for t in timers_of(store, incident_id)] == [None, minutes(10), minutes(10)]
    (stopped,) = events(store, "escalation.stopped")
    assert (stopped.actor, stopped.payload) == (
        "user:bob",
        {"reason": "acknowledged", "steps": 2, "pages": 1},
    )


def test_an_alert_acknowledged_by_its_sender_also_stops_it(store: Store, write_plan, make_engine):
    engine = started(store, write_plan, make_engine, plan())
    incident_id = open_incident(store, engine)
    ack = AlertIn(
        source="native",
        labels={"alertname": "ApiDown", "target": "api"},
        acknowledge=True,
        severity=Severity.critical,
    )
    with store.write() as s:
        ingest(s, [ack], now=minutes(1), settings=engine.loaded.plan.incidents, actor="test")
    assert fire(store, engine, minutes(60)) == []
    assert all(t.cancelled_at == minutes(1) for t in timers_of(store, incident_id))


def test_repeat_goes_through_the_levels_again_after_the_pause(store: Store, write_plan, make_engine):
    engine = started(store, write_plan, make_engine, plan(repeat=1))
    incident_id = open_incident(store, engine)
    assert [(t.step, t.due_at) for t in timers_of(store, incident_id)] == [
        ("c0.l1", T0),
        ("c0.l2", minutes(15)),
        ("c0.l3", minutes(30)),
        ("c1.l1", minutes(60)),  # the last level at 30m, then repeat_after (30m)
        ("c1.l2", minutes(75)),
        ("c1.l3", minutes(90)),
    ]
    assert fire(store, engine, minutes(60)) == ["c0.l1", "c0.l2", "c0.l3", "c1.l1"]
    assert pages(store)[-2:] == [("c1.l1", "person:bob"), ("c1.l1", "person:cho")]


def test_group_wait_delays_the_first_page(store: Store, write_plan, make_engine):
    engine = started(store, write_plan, make_engine, plan(group_wait="2m"))
    open_incident(store, engine)
    assert fire(store, engine, T0 + timedelta(seconds=119)) == []
    assert fire(store, engine, minutes(2)) == ["c0.l1"]
    assert fire(store, engine, minutes(16)) == []
    assert fire(store, engine, minutes(17)) == ["c0.l2"]


def test_an_incident_keeps_the_policy_it_opened_with(store: Store, write_plan, make_engine):
    engine = started(store, write_plan, make_engine, plan())
    old = open_incident(store, engine)
    changed = plan().replace("{after: 15m, notify: [{role: team-lead}", "{after: 5m, notify: [{person: ann}")
    write_plan(changed)
    assert engine.reload().ok
    new = open_incident(store, engine, target="db")
    fire(store, engine, minutes(5))
    assert [
        e.payload["recipients"] for e in events(store, "escalation.fired") if e.subject == f"incident:{new}"
    ] == [
        ["person:bob", "person:cho"],
        ["person:ann", "person:max"],
    ]
    fire(store, engine, minutes(15))
    old_pages = [
        e.payload["recipients"] for e in events(store, "escalation.fired") if e.subject == f"incident:{old}"
    ]
    assert old_pages == [["person:bob", "person:cho"], ["person:lee", "person:max"]]


def test_a_rules_policy_wins_and_channels_are_paged(store: Store, write_plan, make_engine):
    engine = started(store, write_plan, make_engine, plan())
    incident_id = open_incident(store, engine, at=minutes(9 * 60), team="chat")  # Friday 10:00: office hours
    fire(store, engine, minutes(9 * 60 + 10))
    assert pages(store) == [("c0.l1", "person:ann"), ("c0.l2", "channel:ops-chat"), ("c0.l2", "person:lee")]
    with store.read() as s:
        channel = s.scalar(select(NotificationRow).where(NotificationRow.recipient == "channel:ops-chat"))
        incident = s.get(IncidentRow, incident_id)
    assert channel is not None and channel.channels == [{"url": "json://127.0.0.1:9/hook", "after": None}]
    assert channel.message["ack_url"] is None  # ack links are signed for a person
    assert incident is not None and incident.escalation_policy == "chat-first"


def test_a_level_that_reaches_nobody_says_why_and_brings_the_next_level_forward(
    store: Store, write_plan, make_engine
):
    engine = started(store, write_plan, make_engine, plan())
    incident_id = open_incident(store, engine, team="chat")  # Friday 01:00: nobody in the office layer
    assert fire(store, engine, T0) == ["c0.l1", "c0.l2"]
    assert pages(store) == [("c0.l2", "channel:ops-chat"), ("c0.l2", "person:lee")]
    (nobody,) = events(store, "escalation.nobody")
    assert nobody.subject == f"incident:{incident_id}"
    assert nobody.payload["reason"] == "schedule:platform/office: nobody is on call at 2026-11-27 01:00 UTC"
    assert nobody.payload["next"] == "c0.l2"


def test_who_is_on_call_is_resolved_when_the_level_fires(store: Store, write_plan, make_engine):
    engine = started(store, write_plan, make_engine, plan(group_wait="15m"))
    open_incident(store, engine, at=T0 + timedelta(hours=15, minutes=50))  # Friday 16:50, before the handoff
    fire(store, engine, T0 + timedelta(hours=16, minutes=5))  # the first page goes out at 17:05
    assert pages(store) == [("c0.l1", "person:cho"), ("c0.l1", "person:ann")]


def test_each_page_says_what_broke_and_carries_a_signed_ack_link_for_its_person(
    store: Store, write_plan, make_engine
):
    engine = started(store, write_plan, make_engine, plan())
    incident_id = open_incident(store, engine)
    fire(store, engine, T0)
    with store.read() as s:
        row = s.scalar(select(NotificationRow).where(NotificationRow.recipient == "person:bob"))
        assert row is not None
        message = row.message
        token = message["ack_url"].removeprefix("https://maintd.example/ack/")
        grant = verify(s, token, action="ack", now=minutes(5))
    assert (grant.subject, grant.actor, grant.expires_at) == (
        f"incident:{incident_id}",
        "person:bob",
        minutes(24 * 60),
    )
    assert message["title"] == "API is down"  # the heading adds "[P1] TRIGGERED #N"
    assert (message["priority"], message["severity"], message["target"]) == ("P1", "critical", "api")
    assert message["runbook"] == "https://runbooks.example/api-down"
    assert message["deadline"] == minutes(30).isoformat().replace("+00:00", "Z")
    assert message["url"] == f"https://maintd.example/api/v1/incidents/{incident_id}"
    assert message["resolve_url"].startswith("https://maintd.example/resolve/")
    assert message["details"] == ["escalation level 1 of 3 (platform)"]
    assert row.channels == [{"url": "mailto://bob@example.com", "after": None}]


def test_resolving_tells_everyone_who_was_paged(store: Store, write_plan, make_engine):
    engine = started(store, write_plan, make_engine, plan())
    incident_id = open_incident(store, engine)
    fire(store, engine, minutes(15))
    with store.write() as s:
        s.execute(
            update(NotificationRow).where(NotificationRow.recipient != "person:max").values(status=SENT)
        )
        service.resolve(
            s,
            incident_id=incident_id,
            actor="user:lee",
            now=minutes(20),
            settings=engine.loaded.plan.incidents,
        )
    # max's page was never delivered: cancelled, and nothing to tell.
    assert pages(store, "resolved") == [
        ("final", "person:bob"),
        ("final", "person:cho"),
        ("final", "person:lee"),
    ]
    with store.read() as s:
        (notice,) = s.scalars(
            select(NotificationRow.message).where(
                NotificationRow.recipient == "person:bob", NotificationRow.state == "resolved"
            )
        )
    assert notice["title"] == "API is down" and notice["state"] == "resolved"


def test_a_reopened_incident_escalates_again_with_new_steps(store: Store, write_plan, make_engine):
    engine = started(store, write_plan, make_engine, plan())
    incident_id = open_incident(store, engine)
    settings = engine.loaded.plan.incidents
    fire(store, engine, T0)
    with store.write() as s:
        service.resolve(s, incident_id=incident_id, actor="user:bob", now=minutes(5), settings=settings)
    with store.write() as s:
        service.reopen(s, incident_id=incident_id, actor="user:bob", now=minutes(40), settings=settings)
    assert fire(store, engine, minutes(55)) == ["r1.c0.l1", "r1.c0.l2"]
    assert pages(store)[-4:] == [
        ("r1.c0.l1", "person:bob"),
        ("r1.c0.l1", "person:cho"),
        ("r1.c0.l2", "person:lee"),
        ("r1.c0.l2", "person:max"),
    ]


def test_an_incident_without_a_policy_pages_nobody(store: Store, write_plan, make_engine):
    engine = started(store, write_plan, make_engine, PEOPLE)
    incident_id = open_incident(store, engine)
    assert timers_of(store, incident_id) == []
    with store.read() as s:
        incident = s.get(IncidentRow, incident_id)
        assert incident is not None and (incident.escalation_policy, incident.escalation) == (None, None)


def test_a_resolved_alert_during_group_wait_pages_nobody(store: Store, write_plan, make_engine):
    engine = started(store, write_plan, make_engine, plan(group_wait="1m"))
    open_incident(store, engine)
    resolved = AlertIn(
        source="native", labels={"alertname": "ApiDown", "target": "api"}, status=AlertStatus.resolved
    )
    with store.write() as s:
        ingest(
            s, [resolved], now=T0 + timedelta(seconds=30), settings=engine.loaded.plan.incidents, actor="test"
        )
    assert fire(store, engine, minutes(60)) == []
    assert pages(store) == [] and pages(store, "resolved") == []
