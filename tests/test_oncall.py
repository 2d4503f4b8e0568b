"""On-call schedules: rotations across DST, restrictions, overrides, layers; the CLI; the .ics feeds."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from maintd.api.app import create_app
from maintd.api.deps import AppContext
from maintd.auth import Role, create_token
from maintd.cli import app
from maintd.engine import Engine
from maintd.oncall import OnCallSchedule, Shift, on_call, shifts
from maintd.oncall.ics import LINE_OCTETS, calendar, escape, fold
from maintd.plan.loader import PlanError, load_plan
from maintd.registry import Registry
from maintd.signing import Grant, sign, verify


def Z(text: str) -> datetime:
    """An ISO time in UTC (the Z suffix)."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def schedule(*layers: dict[str, Any], time_zone: str = "UTC", **extra: Any) -> OnCallSchedule:
    return OnCallSchedule.model_validate({"name": "ops", "time_zone": time_zone, "layers": layers, **extra})


def layer(members: list[str], name: str = "primary", **rotation: Any) -> dict[str, Any]:
    extra = {k: rotation.pop(k) for k in ("restrictions", "overrides") if k in rotation}
    return {"name": name, "rotation": {"members": members, "start": "2026-01-02", **rotation}, **extra}


# The seed: primary and secondary, one week each, handing off Friday 17:00 UTC.
SEED = schedule(layer(["ann", "bob", "cho"]), layer(["bob", "cho", "ann"], name="secondary"))
BERLIN = schedule(layer(["ann", "bob"], start="2026-03-06"), time_zone="Europe/Berlin")
NEW_YORK = schedule(layer(["ann", "bob"], start="2026-03-06"), time_zone="America/New_York")
DAILY = schedule(layer(["ann", "bob", "cho"], every="1d", handoff="09:00", start="2026-03-02"))
TWO_DAYS = schedule(layer(["ann", "bob"], every="2d", handoff="09:00", start="2026-03-02"))
OFFICE = schedule(
    layer(["ann"], restrictions=["Mon-Fri 09:00-17:00"], start="2026-02-27"), time_zone="Europe/Berlin"
)
WEEKEND = schedule(layer(["ann"], restrictions=["Fri 17:00-Mon 09:00"]))
NIGHTS = schedule(layer(["ann"], restrictions=["17:00-09:00"]))
OVERRIDDEN = schedule(
    layer(
        ["ann", "bob"],
        overrides=[
            {"person": "cho", "start": "2026-01-05T00:00:00Z", "end": "2026-01-07T00:00:00Z"},
            {"person": "dee", "start": "2026-01-06T00:00:00Z", "end": "2026-01-06T12:00:00Z"},
        ],
    ),
    layer(["bob", "ann"], name="secondary"),
    overrides=[{"person": "eve", "start": "2026-01-10T10:00:00", "end": "2026-01-10T12:00:00"}],
    time_zone="Europe/Berlin",
)


@pytest.mark.parametrize(
    ("sched", "at", "expected"),
    [
        # weekly, Friday 17:00 UTC
        (SEED, "2026-01-02T16:59", {"primary": None, "secondary": None}),
        (SEED, "2026-01-02T17:00", {"primary": "ann", "secondary": "bob"}),
        (SEED, "2026-01-09T16:59", {"primary": "ann", "secondary": "bob"}),
        (SEED, "2026-01-09T17:00", {"primary": "bob", "secondary": "cho"}),
        (SEED, "2026-01-23T17:00", {"primary": "ann", "secondary": "bob"}),
        (SEED, "2026-11-27T01:00", {"primary": "bob", "secondary": "cho"}),  # week 46
        # Europe/Berlin: 17:00 local is 16:00 UTC in winter and 15:00 UTC in summer (DST from 2026-03-29)
        (BERLIN, "2026-03-27T15:59", {"primary": "ann"}),
        (BERLIN, "2026-03-27T16:00", {"primary": "bob"}),
        (BERLIN, "2026-04-03T14:59", {"primary": "bob"}),
        (BERLIN, "2026-04-03T15:00", {"primary": "ann"}),
        # ... and back on 2026-10-25
        (BERLIN, "2026-10-23T14:59", {"primary": "ann"}),
        (BERLIN, "2026-10-23T15:00", {"primary": "bob"}),
        (BERLIN, "2026-10-30T15:59", {"primary": "bob"}),
        (BERLIN, "2026-10-30T16:00", {"primary": "ann"}),
        # America/New_York changes on 2026-03-08: 22:00 UTC before, 21:00 UTC after
        (NEW_YORK, "2026-03-06T21:59", {"primary": None}),
        (NEW_YORK, "2026-03-06T22:00", {"primary": "ann"}),
        (NEW_YORK, "2026-03-13T20:59", {"primary": "ann"}),
        (NEW_YORK, "2026-03-13T21:00", {"primary": "bob"}),
        # daily at 09:00, and every second day
        (DAILY, "2026-03-02T08:59", {"primary": None}),
        (DAILY, "2026-03-02T09:00", {"primary": "ann"}),
        (DAILY, "2026-03-03T08:59", {"primary": "ann"}),
        (DAILY, "2026-03-03T09:00", {"primary": "bob"}),
        (DAILY, "2026-03-05T09:00", {"primary": "ann"}),
        (TWO_DAYS, "2026-03-03T12:00", {"primary": "ann"}),
        (TWO_DAYS, "2026-03-04T09:00", {"primary": "bob"}),
        # restrictions, in the schedule's zone
        (OFFICE, "2026-03-02T07:59", {"primary": None}),  # Monday 08:59 CET
        (OFFICE, "2026-03-02T08:00", {"primary": "ann"}),
        (OFFICE, "2026-03-06T15:59", {"primary": "ann"}),  # Friday 16:59 CET
        (OFFICE, "2026-03-06T16:00", {"primary": None}),
        (OFFICE, "2026-03-07T10:00", {"primary": None}),  # Saturday
        (OFFICE, "2026-03-30T07:00", {"primary": "ann"}),  # Monday 09:00 CEST
        (WEEKEND, "2026-01-09T16:59", {"primary": None}),
        (WEEKEND, "2026-01-10T12:00", {"primary": "ann"}),
        (WEEKEND, "2026-01-12T08:59", {"primary": "ann"}),
        (WEEKEND, "2026-01-12T09:00", {"primary": None}),
        (NIGHTS, "2026-01-06T03:00", {"primary": "ann"}),
        (NIGHTS, "2026-01-06T12:00", {"primary": None}),
        # overrides: on a layer (a later one wins), and on the schedule (its first layer only)
        (OVERRIDDEN, "2026-01-05T12:00", {"primary": "cho", "secondary": "bob"}),
        (OVERRIDDEN, "2026-01-06T06:00", {"primary": "dee", "secondary": "bob"}),
        (OVERRIDDEN, "2026-01-06T18:00", {"primary": "cho", "secondary": "bob"}),
        (OVERRIDDEN, "2026-01-07T00:00", {"primary": "ann", "secondary": "bob"}),
        (OVERRIDDEN, "2026-01-10T09:30", {"primary": "eve", "secondary": "ann"}),  # 10:30 Berlin
        (OVERRIDDEN, "2026-01-10T11:00", {"primary": "bob", "secondary": "ann"}),
    ],
)
def test_who_is_on_call(sched: OnCallSchedule, at: str, expected: dict[str, str | None]) -> None:
    assert on_call(sched, Z(at)) == expected


def spans(found: list[Shift]) -> list[tuple[str, str, str, str]]:
    return [
        (s.layer, s.person, s.start.strftime("%m-%d %H:%M"), s.end.strftime("%m-%d %H:%M")) for s in found
    ]


def test_a_berlin_week_across_each_dst_change_is_an_hour_shorter_or_longer() -> None:
    spring = shifts(BERLIN, Z("2026-03-27T00:00"), Z("2026-04-04T00:00"))
    assert spans(spring) == [
        ("primary", "ann", "03-27 00:00", "03-27 16:00"),
        ("primary", "bob", "03-27 16:00", "04-03 15:00"),
        ("primary", "ann", "04-03 15:00", "04-04 00:00"),
    ]
    assert spring[1].end - spring[1].start == timedelta(hours=167)
    autumn = shifts(BERLIN, Z("2026-10-23T15:00"), Z("2026-10-30T16:00"))
    assert spans(autumn) == [("primary", "bob", "10-23 15:00", "10-30 16:00")]
    assert autumn[0].end - autumn[0].start == timedelta(hours=169)
    assert all(s.start.tzinfo is UTC and s.end.tzinfo is UTC for s in spring + autumn)


def test_shifts_list_every_layer_in_start_order_cut_to_the_range() -> None:
    found = shifts(SEED, Z("2026-01-08T00:00"), Z("2026-01-10T00:00"))
    assert spans(found) == [
        ("primary", "ann", "01-08 00:00", "01-09 17:00"),
        ("secondary", "bob", "01-08 00:00", "01-09 17:00"),
        ("primary", "bob", "01-09 17:00", "01-10 00:00"),
        ("secondary", "cho", "01-09 17:00", "01-10 00:00"),
    ]


def test_restrictions_split_a_shift_into_office_hours() -> None:
    found = shifts(OFFICE, Z("2026-03-06T00:00"), Z("2026-03-10T00:00"))
    assert spans(found) == [
        ("primary", "ann", "03-06 08:00", "03-06 16:00"),
        ("primary", "ann", "03-09 08:00", "03-09 16:00"),
    ]


def test_overrides_cut_the_rotation_and_adjacent_spans_of_one_person_merge() -> None:
    sched = schedule(
        layer(
            ["ann", "bob"],
            overrides=[{"person": "ann", "start": "2026-01-09T17:00Z", "end": "2026-01-10T00:00Z"}],
        )
    )
    assert spans(shifts(sched, Z("2026-01-09T00:00"), Z("2026-01-11T00:00"))) == [
        ("primary", "ann", "01-09 00:00", "01-10 00:00"),
        ("primary", "bob", "01-10 00:00", "01-11 00:00"),
    ]


PEOPLE = """
    people:
      - {name: ann, email: ann@example.com}
      - {name: bob, email: bob@example.com}
      - {name: cho, email: cho@example.com}
"""
ONCALL = (
    PEOPLE
    + """
    schedules:
      - name: ops
        layers:
          - name: primary
            rotation: {members: [ann, bob, cho], start: 2026-01-02}
          - name: secondary
            rotation: {members: [bob, cho, ann], start: 2026-01-02}
      - name: day
        time_zone: Europe/Berlin
        layers:
          - name: primary
            rotation: {members: [cho], every: 1d, handoff: "09:00", start: 2026-01-01}
            restrictions: ["Mon-Fri 09:00-17:00"]
"""
)


def test_a_schedule_naming_an_unknown_person_is_a_problem_at_its_line(write_plan) -> None:  # type: ignore[no-untyped-def]
    write_plan(PEOPLE)
    plan_dir = write_plan(
        """
        schedules:
          - name: ops
            layers:
              - name: primary
                rotation:
                  members: [ann, zed]
                  start: 2026-01-02
        """,
        "schedules.yaml",
    )
    with pytest.raises(PlanError) as caught:
        load_plan(plan_dir, Registry.default())
    assert [str(p) for p in caught.value.problems] == [
        f"{plan_dir / 'schedules.yaml'}:6: error: "
        "schedules[0].layers[0].rotation.members[1]: unknown person 'zed'"
    ]


# --- the CLI


@pytest.fixture
def cli(sqlite_store, monkeypatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("MAINTD_DATABASE_URL", sqlite_store.url)
    monkeypatch.delenv("MAINTD_PLAN", raising=False)
    runner = CliRunner()

    def invoke(*args: str):  # type: ignore[no-untyped-def]
        return runner.invoke(app, list(args), catch_exceptions=False)

    return invoke


def test_oncall_who_prints_each_layer_of_each_schedule(cli, write_plan) -> None:  # type: ignore[no-untyped-def]
    plan = str(write_plan(ONCALL))
    result = cli("oncall", "who", "--plan", plan, "--at", "2026-01-10T12:00:00")
    assert result.exit_code == 0, result.output
    assert "ops" in result.output and "bob" in result.output and "nobody" in result.output
    result = cli("oncall", "who", "--plan", plan, "--at", "2026-01-12T08:30:00+00:00", "--json")
    rows = [json.loads(line) for line in result.output.splitlines()]
    assert [(r["schedule"], r["layers"]) for r in rows] == [
        ("ops", {"primary": "bob", "secondary": "cho"}),
        ("day", {"primary": "cho"}),  # 09:30 in Berlin
    ]


def test_oncall_shifts_lists_a_schedule_between_two_times(cli, write_plan) -> None:  # type: ignore[no-untyped-def]
    plan = str(write_plan(ONCALL))
    args = ("oncall", "shifts", "--plan", plan, "-s", "ops", "--from", "2026-01-09", "--to", "2026-01-10")
    result = cli(*args, "--json")
    assert result.exit_code == 0, result.output
    found = [json.loads(line) for line in result.output.splitlines()]
    assert [(s["layer"], s["person"], s["start"]) for s in found] == [
        ("primary", "ann", "2026-01-09T00:00:00Z"),
        ("secondary", "bob", "2026-01-09T00:00:00Z"),
        ("primary", "bob", "2026-01-09T17:00:00Z"),
        ("secondary", "cho", "2026-01-09T17:00:00Z"),
    ]
    table = cli(*args)
    assert table.exit_code == 0 and "2026-01-09 17:00:00" in table.output


def test_oncall_names_an_unknown_schedule(cli, write_plan) -> None:  # type: ignore[no-untyped-def]
    result = CliRunner().invoke(app, ["oncall", "shifts", "--plan", str(write_plan(ONCALL)), "-s", "nope"])
    assert result.exit_code == 1
    assert "no schedule 'nope' in the plan; schedules: ops, day" in result.output


def test_oncall_who_reads_the_active_plan_from_the_database(
    cli, sqlite_store, write_plan, make_engine
) -> None:  # type: ignore[no-untyped-def]
    assert make_engine(sqlite_store, write_plan(ONCALL)).reload().ok
    result = cli("oncall", "who", "-s", "ops", "--at", "2026-01-02T17:00:00Z", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["layers"] == {"primary": "ann", "secondary": "bob"}


# --- iCalendar


def parse_ics(body: str) -> list[dict[str, str]]:
    """Our own output read back: every line within 75 octets, unfolded, unescaped, one dict per component."""
    assert body.endswith("\r\n") and "\n" not in body.replace("\r\n", "")
    lines = body[:-2].split("\r\n")
    assert all(len(line.encode()) <= LINE_OCTETS for line in lines)
    unfolded: list[str] = []
    for line in lines:
        if line.startswith(" "):
            unfolded[-1] += line[1:]
        else:
            unfolded.append(line)
    components: list[dict[str, str]] = []
    for line in unfolded:
        name, _, value = line.partition(":")
        if name == "BEGIN":
            components.append({})
        elif name != "END":
            components[-1][name] = unescape(value)
    return components


def unescape(value: str) -> str:
    out, i = "", 0
    while i < len(value):
        if value[i] == "\\":
            out += "\n" if value[i + 1] in "nN" else value[i + 1]
            i += 2
        else:
            out += value[i]
            i += 1
    return out


@pytest.mark.parametrize(
    "text",
    ["plain", "a, b; c\\d", "two\nlines", "x" * 200, "ü" * 80 + "; €" * 40, "é" + "a" * 74 + "😀" * 30],
)
def test_ics_text_survives_escaping_and_folding(text: str) -> None:
    line = f"SUMMARY:{escape(text)}"
    folded = fold(line)
    assert all(len(part.encode()) <= LINE_OCTETS for part in folded.split("\r\n"))
    assert folded.replace("\r\n ", "") == line
    assert unescape(line.partition(":")[2]) == text


def test_a_calendar_has_one_event_per_shift_in_utc() -> None:
    found = shifts(BERLIN, Z("2026-03-27T00:00"), Z("2026-04-04T00:00"))
    components = parse_ics(calendar("on call: ops", found, Z("2026-03-20T00:00")))
    assert components[0]["VERSION"] == "2.0"
    events = components[1:]
    assert [(e["DTSTART"], e["DTEND"], e["SUMMARY"]) for e in events] == [
        ("20260327T000000Z", "20260327T160000Z", "on call: ops primary"),
        ("20260327T160000Z", "20260403T150000Z", "on call: ops primary"),
        ("20260403T150000Z", "20260404T000000Z", "on call: ops primary"),
    ]
    assert events[1]["DESCRIPTION"] == "bob is on call for ops, layer primary"
    assert len({e["UID"] for e in events}) == 3
    assert {e["DTSTAMP"] for e in events} == {"20260320T000000Z"}


LONG = "a-schedule-with-a-name-long-enough-to-fold-the-summary-line-over"[:63]


@pytest.fixture
def engine(sqlite_store, write_plan, make_engine) -> Engine:  # type: ignore[no-untyped-def]
    engine = make_engine(sqlite_store, write_plan(ONCALL.replace("name: day", f"name: {LONG}")))
    assert engine.reload().ok
    return engine


@pytest.fixture
def client(engine: Engine) -> Iterator[TestClient]:
    with TestClient(create_app(AppContext(engine.store, engine.clock, engine.metrics, engine))) as c:
        yield c


@pytest.fixture
def viewer(engine: Engine) -> dict[str, str]:
    with engine.store.write() as s:
        token = create_token(s, name="vera", role=Role.viewer, now=engine.clock.now(), actor="test")
    return {"Authorization": f"Bearer {token}"}


def test_the_oncall_routes_need_a_token(client: TestClient) -> None:
    for path in ("/api/v1/oncall", "/api/v1/oncall/ops.ics", "/api/v1/oncall/people/ann.ics"):
        assert client.get(path).status_code == 401


def test_who_is_on_call_now_per_schedule(client: TestClient, viewer: dict[str, str]) -> None:
    # The clock stands at Friday 2026-11-27 01:00 UTC, in week 46 after the first handoff.
    body = client.get("/api/v1/oncall", headers=viewer).json()
    assert body == [
        {"schedule": "ops", "at": "2026-11-27T01:00:00Z", "layers": {"primary": "bob", "secondary": "cho"}},
        {"schedule": LONG, "at": "2026-11-27T01:00:00Z", "layers": {"primary": None}},
    ]


def test_a_schedule_feed_is_text_calendar_with_the_weeks_asked_for(
    client: TestClient, viewer: dict[str, str]
) -> None:
    response = client.get("/api/v1/oncall/ops.ics?weeks=2", headers=viewer)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/calendar")
    events = parse_ics(response.text)[1:]
    assert [(e["DTSTART"], e["SUMMARY"]) for e in events] == [
        ("20261127T010000Z", "on call: ops primary"),
        ("20261127T010000Z", "on call: ops secondary"),
        ("20261127T170000Z", "on call: ops primary"),
        ("20261127T170000Z", "on call: ops secondary"),
        ("20261204T170000Z", "on call: ops primary"),
        ("20261204T170000Z", "on call: ops secondary"),
    ]
    assert events[-1]["DTEND"] == "20261211T010000Z"


def test_a_long_schedule_name_folds_and_reads_back(client: TestClient, viewer: dict[str, str]) -> None:
    response = client.get(f"/api/v1/oncall/{LONG}.ics?weeks=1", headers=viewer)
    assert "\r\n " in response.text
    events = parse_ics(response.text)[1:]
    assert events and {e["SUMMARY"] for e in events} == {f"on call: {LONG} primary"}


def test_a_person_feed_has_their_shifts_in_every_schedule(client: TestClient, viewer: dict[str, str]) -> None:
    response = client.get("/api/v1/oncall/people/cho.ics?weeks=1", headers=viewer)
    assert response.status_code == 200
    events = parse_ics(response.text)[1:]
    assert events and all(e["DESCRIPTION"].startswith("cho is on call") for e in events)
    assert {e["SUMMARY"] for e in events} == {
        "on call: ops secondary",  # until Friday 17:00
        "on call: ops primary",  # from then
        f"on call: {LONG} primary",
    }


def test_unknown_schedules_and_people_are_404(client: TestClient, viewer: dict[str, str]) -> None:
    assert client.get("/api/v1/oncall/nope.ics", headers=viewer).status_code == 404
    assert client.get("/api/v1/oncall/people/zed.ics", headers=viewer).status_code == 404


# --- feed tokens: calendar apps cannot send a header


def feed_token(engine: Engine, subject: str, *, action: str = "feed", lasts: timedelta | None = None) -> str:
    expires = engine.clock.now() + lasts if lasts else None
    with engine.store.write() as s:
        return sign(s, Grant(action, subject, "user:test", expires))


def test_a_feed_token_opens_its_feed_without_a_header(client: TestClient, engine: Engine) -> None:
    ops = client.get(f"/api/v1/oncall/ops.ics?weeks=1&token={feed_token(engine, 'schedule:ops')}")
    assert (ops.status_code, ops.headers["content-type"][:13]) == (200, "text/calendar")
    assert parse_ics(ops.text)[0]["X-WR-CALNAME"] == "on call: ops"
    cho = client.get(f"/api/v1/oncall/people/cho.ics?token={feed_token(engine, 'person:cho')}")
    assert cho.status_code == 200 and "cho is on call" in cho.text


def test_a_feed_token_opens_no_other_feed_and_no_other_route(client: TestClient, engine: Engine) -> None:
    token = feed_token(engine, "schedule:ops")
    other = client.get(f"/api/v1/oncall/{LONG}.ics?token={token}")
    assert other.status_code == 403
    assert other.json()["detail"] == f"this feed token is for schedule:ops, not schedule:{LONG}"
    assert client.get(f"/api/v1/oncall/people/ann.ics?token={token}").status_code == 403
    assert client.get(f"/api/v1/oncall?token={token}").status_code == 401


def test_a_forged_expired_or_ack_token_does_not_open_a_feed(client: TestClient, engine: Engine) -> None:
    good = feed_token(engine, "schedule:ops")
    forged = client.get(f"/api/v1/oncall/ops.ics?token={good[:-4]}AAAA")
    assert (forged.status_code, forged.json()["detail"]) == (403, "this link was not issued by this maintd")
    ack = client.get(f"/api/v1/oncall/ops.ics?token={feed_token(engine, 'schedule:ops', action='ack')}")
    assert (ack.status_code, ack.json()["detail"]) == (403, "this link is for 'ack', not 'feed'")
    brief = feed_token(engine, "schedule:ops", lasts=timedelta(days=1))
    assert client.get(f"/api/v1/oncall/ops.ics?token={brief}").status_code == 200
    engine.clock.advance(timedelta(days=1))
    assert client.get(f"/api/v1/oncall/ops.ics?token={brief}").status_code == 403
    assert client.get(f"/api/v1/oncall/ops.ics?token={good}").status_code == 200  # no expiry by default


def test_the_bearer_header_still_opens_the_feeds(client: TestClient, viewer: dict[str, str]) -> None:
    assert client.get("/api/v1/oncall/ops.ics", headers=viewer).status_code == 200
    assert client.get("/api/v1/oncall/people/ann.ics", headers=viewer).status_code == 200


def test_feed_url_prints_a_url_that_opens_the_feed(cli, client: TestClient, engine: Engine) -> None:  # type: ignore[no-untyped-def]
    result = cli("oncall", "feed-url", "ops", "--public-url", "https://maintd.example.com/")
    assert result.exit_code == 0, result.output
    url = result.output.strip()
    assert url.startswith("https://maintd.example.com/api/v1/oncall/ops.ics?token=")
    assert client.get(url.removeprefix("https://maintd.example.com")).status_code == 200
    person = cli("oncall", "feed-url", "--person", "cho", "--expires", "90d").output.strip()
    assert person.startswith("http://127.0.0.1:8470/api/v1/oncall/people/cho.ics?token=")
    token = person.rsplit("=", 1)[1]
    with engine.store.read() as s:
        grant = verify(s, token, action="feed", now=engine.clock.now())
    assert grant.subject == "person:cho" and grant.expires_at is not None
    # The command runs on the system clock, not the test's.
    assert timedelta(days=89) < grant.expires_at - datetime.now(UTC) <= timedelta(days=90)


def test_feed_url_wants_one_known_schedule_or_person(cli, engine: Engine) -> None:  # type: ignore[no-untyped-def]
    for args, error in (
        ((), "give a SCHEDULE or --person NAME"),
        (("ops", "--person", "cho"), "give a SCHEDULE or --person NAME"),
        (("nope",), "no schedule 'nope' in the plan"),
        (("--person", "zed"), "no person 'zed' in the plan"),
        (("ops", "--expires", "soon"), "--expires:"),
    ):
        result = cli("oncall", "feed-url", *args)
        assert result.exit_code == 1 and error in result.output, (args, result.output)
