"""Handoffs: when they happen (DST, overrides, restrictions), the report handed over, its delivery."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from typer.testing import CliRunner

from maintd import timers
from maintd.alerts.model import AlertIn, Severity
from maintd.cli import app
from maintd.engine import Engine
from maintd.incidents import service
from maintd.incidents.pipeline import ingest
from maintd.oncall import OnCallSchedule
from maintd.oncall.handoff import Handoff, handoff_report, handoffs_between, next_handoffs, report_window
from maintd.oncall.handoff_delivery import handlers, queue_handoff, schedule_next_handoffs
from maintd.store.models import NotificationRow
from tests.conftest import T0
from tests.personas import as_


def Z(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def schedule(*layers: dict[str, Any], time_zone: str = "UTC", **extra: Any) -> OnCallSchedule:
    return OnCallSchedule.model_validate({"name": "ops", "time_zone": time_zone, "layers": layers, **extra})


def layer(members: list[str], name: str = "primary", **rotation: Any) -> dict[str, Any]:
    extra = {k: rotation.pop(k) for k in ("restrictions", "overrides") if k in rotation}
    return {"name": name, "rotation": {"members": members, "start": "2026-01-02", **rotation}, **extra}


def brief(found: list[Handoff]) -> list[tuple[str, str, str | None, str]]:
    return [(h.at.strftime("%m-%d %H:%M"), h.layer, h.outgoing, h.incoming) for h in found]


BERLIN = schedule(layer(["ann", "bob"], start="2026-03-06"), time_zone="Europe/Berlin")


def test_berlin_handoffs_stay_at_17_local_across_each_dst_change() -> None:
    spring = handoffs_between([BERLIN], Z("2026-03-20T00:00"), Z("2026-04-11T00:00"))
    assert brief(spring) == [
        ("03-20 16:00", "primary", "bob", "ann"),  # CET: UTC+1
        ("03-27 16:00", "primary", "ann", "bob"),
        ("04-03 15:00", "primary", "bob", "ann"),  # CEST from 29 March: UTC+2
        ("04-10 15:00", "primary", "ann", "bob"),
    ]
    autumn = handoffs_between([BERLIN], Z("2026-10-20T00:00"), Z("2026-11-01T00:00"))
    assert brief(autumn) == [
        ("10-23 15:00", "primary", "ann", "bob"),  # CEST until 25 October
        ("10-30 16:00", "primary", "bob", "ann"),
    ]
    assert all(h.at.tzinfo is UTC for h in spring + autumn)
    assert brief(next_handoffs(BERLIN, Z("2026-03-27T16:00"))) == [("04-03 15:00", "primary", "bob", "ann")]


def test_the_first_shift_is_handed_over_from_nobody() -> None:
    assert brief(handoffs_between([BERLIN], Z("2026-03-01T00:00"), Z("2026-03-07T00:00"))) == [
        ("03-06 16:00", "primary", None, "ann")
    ]


def test_an_override_adds_a_handoff_at_each_end_and_schedule_overrides_hit_the_first_layer() -> None:
    sched = schedule(
        layer(
            ["ann", "bob"],
            overrides=[{"person": "cho", "start": "2026-01-05T08:00Z", "end": "2026-01-06T08:00Z"}],
        ),
        layer(["bob", "ann"], name="secondary"),
        overrides=[{"person": "dee", "start": "2026-01-07T12:00Z", "end": "2026-01-07T13:00Z"}],
    )
    assert brief(handoffs_between([sched], Z("2026-01-03T00:00"), Z("2026-01-10T00:00"))) == [
        ("01-05 08:00", "primary", "ann", "cho"),
        ("01-06 08:00", "primary", "cho", "ann"),
        ("01-07 12:00", "primary", "ann", "dee"),
        ("01-07 13:00", "primary", "dee", "ann"),
        ("01-09 17:00", "primary", "ann", "bob"),
        ("01-09 17:00", "secondary", "bob", "ann"),
    ]


def test_a_restricted_layer_hands_over_when_the_next_person_starts_not_every_morning() -> None:
    office = schedule(layer(["ann", "bob"], restrictions=["Mon-Fri 09:00-17:00"]), time_zone="Europe/Berlin")
    found = handoffs_between([office], Z("2026-01-06T00:00"), Z("2026-01-20T00:00"))
    # ann's week ends Friday 17:00 with her office hours; bob starts Monday 09:00 Berlin (08:00 UTC).
    assert brief(found) == [
        ("01-12 08:00", "primary", "ann", "bob"),
        ("01-19 08:00", "primary", "bob", "ann"),
    ]


# --- the report, on both stores

PLAN = """
incidents: {deadlines: {P0: 5m, P1: 10m, P2: 1h, P3: 1d}}
people:
  - {name: ann, email: ann@example.com, notify: ["mailto://ann@example.com"]}
  - {name: bob, email: bob@example.com}
  - {name: cho, email: cho@example.com, notify: ["json://127.0.0.1:9/cho"]}
schedules:
  - name: ops
    layers:
      - name: primary
        rotation: {members: [ann, bob, cho], start: 2026-01-02}
      - name: secondary
        rotation: {members: [bob, cho, ann], start: 2026-01-02}
"""
# The clock stands at Friday 2026-11-27 01:00 UTC; ops hands over at 17:00 UTC, bob to cho, cho to ann.
HANDOFF = Z("2026-11-27T17:00")
PREVIOUS = Z("2026-11-20T17:00")


@pytest.fixture
def engine(store, write_plan, make_engine) -> Engine:  # type: ignore[no-untyped-def]
    engine = make_engine(store, write_plan(PLAN))
    assert engine.reload().ok
    return engine


@pytest.fixture
def cli(engine: Engine, monkeypatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("MAINTD_DATABASE_URL", engine.store.url)
    monkeypatch.delenv("MAINTD_PLAN", raising=False)
    return lambda *args: CliRunner().invoke(app, list(args), catch_exceptions=False)


def ops(engine: Engine) -> OnCallSchedule:
    assert engine.loaded is not None
    return engine.loaded.plan.schedules[0]


def open_incident(engine: Engine, name: str, at: datetime, severity: Severity = Severity.critical) -> int:
    assert engine.loaded is not None
    alert = AlertIn(source="native", labels={"alertname": name}, severity=severity, summary=f"{name} is down")
    with engine.store.write() as s:
        (delivery,) = ingest(s, [alert], now=at, settings=engine.loaded.plan.incidents, actor="test")
    assert delivery.incident is not None
    return delivery.incident.id


def page(engine: Engine, incident_id: int | None, recipient: str, at: datetime, **row: Any) -> None:
    values: dict[str, Any] = {
        "subject": f"incident:{incident_id}",
        "incident_id": incident_id,
        "recipient": recipient,
        "state": "triggered",
        "step": at.isoformat(),
        "status": "sent",
        "channels": [],
        "message": {},
        "created_at": at,
        "due_at": at,
        "sent_at": at,
        **row,
    }
    with engine.store.write() as s:
        s.add(NotificationRow(**values))


@pytest.fixture
def shift(engine: Engine) -> dict[str, int]:
    """A week of ops: one incident from before it still open, one opened and resolved, one acknowledged."""
    old = open_incident(engine, "DiskFull", Z("2026-11-20T10:00"))
    done = open_incident(engine, "CertExpiry", T0, Severity.warning)
    acked = open_incident(engine, "ApiDown", Z("2026-11-27T03:00"))
    later = open_incident(engine, "Later", Z("2026-11-27T18:00"))
    with engine.store.write() as s:
        settings = service.stored_settings(s)
        service.resolve(s, incident_id=done, actor="test", now=Z("2026-11-27T02:00"), settings=settings)
        service.acknowledge(s, incident_id=acked, actor="test", now=Z("2026-11-27T03:05"), settings=settings)
        service.assign(s, incident_id=acked, assignee="bob", actor="test", now=Z("2026-11-27T03:06"))
    page(engine, old, "person:bob", Z("2026-11-21T09:00"))
    page(engine, acked, "person:bob", Z("2026-11-27T03:01"))
    page(engine, acked, "person:cho", Z("2026-11-27T03:04"))
    page(engine, old, "person:ann", Z("2026-11-20T10:01"))  # before the shift
    page(engine, acked, "person:ann", Z("2026-11-27T03:02"), status="pending", sent_at=None)  # never sent
    page(engine, None, "person:bob", Z("2026-11-27T04:00"), state="handoff", subject="schedule:ops")
    # a post-mortem action reminder about an incident is mail, not a page
    page(engine, old, "person:cho", Z("2026-11-27T05:00"), state="reminder", subject="postmortem-action:1")
    return {"old": old, "done": done, "acked": acked, "later": later}


def test_the_report_lists_open_incidents_pages_and_what_came_and_went(engine: Engine, shift) -> None:  # type: ignore[no-untyped-def]
    since = report_window(ops(engine), HANDOFF)
    assert since == PREVIOUS
    with engine.store.read() as s:
        report = handoff_report(s, schedule=ops(engine), at=HANDOFF, since=since)
    assert [(h.layer, h.outgoing, h.incoming) for h in report.handoffs] == [
        ("primary", "bob", "cho"),
        ("secondary", "cho", "ann"),
    ]
    assert report.on_call == {"primary": "cho", "secondary": "ann"}
    assert [(i.id, i.priority, i.state, i.age_seconds, i.assignee) for i in report.open_incidents] == [
        (shift["old"], "P1", "triggered", int(timedelta(days=7, hours=7).total_seconds()), None),
        (shift["acked"], "P1", "acknowledged", 14 * 3600, "bob"),
    ]
    assert [(p.recipient, p.sent, p.incident_ids) for p in report.pages] == [
        ("person:bob", 2, sorted([shift["old"], shift["acked"]])),
        ("person:cho", 1, [shift["acked"]]),
    ]
    assert [i.id for i in report.opened] == [shift["done"], shift["acked"]]
    assert [(i.id, i.state) for i in report.resolved] == [(shift["done"], "resolved")]
    text = "\n".join(report.lines())
    assert "primary: bob -> cho" in text
    assert f"#{shift['acked']} P1 acknowledged 14h 0m, bob: ApiDown is down" in text
    assert "person:bob: 2 (" in text


def test_a_handoff_report_is_queued_once_to_each_outgoing_and_incoming_person(engine: Engine, shift) -> None:  # type: ignore[no-untyped-def]
    assert engine.loaded is not None
    with engine.store.write() as s:
        report = handoff_report(s, schedule=ops(engine), at=HANDOFF, since=PREVIOUS)
        assert queue_handoff(s, report=report, people=engine.loaded.plan.people, now=HANDOFF) == 3
        assert queue_handoff(s, report=report, people=engine.loaded.plan.people, now=HANDOFF) == 0
    with engine.store.read() as s:
        rows = s.scalars(select(NotificationRow).where(NotificationRow.state == "handoff")).all()
        queued = {r.recipient: r for r in rows if r.subject == "schedule:ops" and r.incident_id is None}
    assert sorted(queued) == ["person:ann", "person:bob", "person:cho"]
    assert queued["person:ann"].step == "2026-11-27T17:00:00+00:00"
    assert (queued["person:ann"].status, queued["person:ann"].channels) == (
        "pending",
        [{"url": "mailto://ann@example.com", "after": None}],
    )
    assert (queued["person:bob"].status, queued["person:bob"].last_error) == (
        "failed",
        "person:bob has no notification channels",
    )
    message = queued["person:cho"].message
    assert (message["state"], message["title"]) == ("handoff", "Handoff: ops")
    assert "Handoff of ops at 2026-11-27 17:00 UTC; shift since 2026-11-20 17:00 UTC." in message["details"]


def test_a_handoff_timer_queues_the_report_and_schedules_the_next_one(engine: Engine, shift) -> None:  # type: ignore[no-untyped-def]
    assert engine.loaded is not None
    plan = engine.loaded.plan
    kinds = handlers(people=plan.people, schedules=plan.schedules)
    with engine.store.write() as s:
        # Loading the plan scheduled the next handoff already; scheduling again adds nothing.
        assert schedule_next_handoffs(s, schedules=engine.loaded.plan.schedules, now=T0) == 0
        assert [t.due_at for t in timers.pending(s, subject="schedule:ops", kind="handoff")] == [HANDOFF]
        assert timers.fire_due(s, HANDOFF - timedelta(seconds=1), owner="test", handlers=kinds) == []
        (fired,) = timers.fire_due(s, HANDOFF, owner="test", handlers=kinds)
    assert (fired.kind, fired.error) == ("handoff", None)
    with engine.store.read() as s:
        queued = s.scalars(select(NotificationRow.recipient).where(NotificationRow.subject == "schedule:ops"))
        assert sorted(queued) == ["person:ann", "person:bob", "person:bob", "person:cho"]  # and the fixture's
        following = timers.pending(s, subject="schedule:ops", kind="handoff")
        assert [t.due_at for t in following] == [Z("2026-12-04T17:00")]


def test_the_engine_sends_the_handoff_report_at_the_handoff_and_not_before(engine: Engine) -> None:
    def queued() -> list[str]:
        with engine.store.read() as s:
            rows = s.scalars(select(NotificationRow).where(NotificationRow.subject == "schedule:ops"))
            return sorted(r.recipient for r in rows if r.state == "handoff")

    engine.tick(HANDOFF - timedelta(seconds=1))
    assert queued() == []
    engine.tick(HANDOFF)
    everyone = ["person:ann", "person:bob", "person:cho"]  # outgoing and incoming, both layers
    assert queued() == everyone
    engine.tick(HANDOFF + timedelta(minutes=1))
    assert queued() == everyone  # once each


def test_a_changed_rotation_moves_the_pending_handoff_timer(engine: Engine) -> None:
    document = ops(engine).model_dump(mode="json")
    for each in document["layers"]:
        each["rotation"]["handoff"] = "Monday 09:00"
    moved = OnCallSchedule.model_validate(document)
    with engine.store.write() as s:
        assert schedule_next_handoffs(s, schedules=[ops(engine)], now=T0) == 0  # the plan load did
        assert schedule_next_handoffs(s, schedules=[moved], now=T0) == 1
        assert [t.due_at for t in timers.pending(s, subject="schedule:ops", kind="handoff")] == [
            Z("2026-11-30T09:00")
        ]


def test_the_report_route_and_command(engine: Engine, shift, client: TestClient, tokens, cli) -> None:  # type: ignore[no-untyped-def]
    url = "/api/v1/oncall/ops/handoff?at=2026-11-27T17:00:00Z"
    assert client.get(url).status_code == 401
    body = client.get(url, headers=as_(tokens, "vera")).json()
    assert (body["since"], body["on_call"]) == (
        "2026-11-20T17:00:00Z",
        {"primary": "cho", "secondary": "ann"},
    )
    assert [i["id"] for i in body["open_incidents"]] == [shift["old"], shift["acked"]]
    assert client.get("/api/v1/oncall/nope/handoff", headers=as_(tokens, "vera")).status_code == 404
    printed = cli("oncall", "handoff", "-s", "ops", "--at", "2026-11-27T17:00:00Z")
    assert printed.exit_code == 0, printed.output
    assert "primary: bob -> cho" in printed.output and "ApiDown is down" in printed.output
