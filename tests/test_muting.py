"""Muting on both stores: declared maintenance windows, inhibition, which reason wins, and a muted
alert that its sender repeats after the muting ended."""

from __future__ import annotations

import json
from collections.abc import Collection, Sequence
from datetime import datetime, timedelta

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from maintd.alerts.model import AlertIn, AlertStatus, Severity
from maintd.alerts.silences import create_silence, expire_silence
from maintd.cli import app
from maintd.engine import Engine
from maintd.incidents.pipeline import Delivery, ingest
from maintd.plan.incidents import IncidentSettings, Matcher
from maintd.scheduler.orders import RunOrder
from maintd.store.db import Store
from maintd.store.models import AlertRow, EventRow, IncidentRow, RunRow
from tests.conftest import T0, run  # T0: Friday 2026-11-27 01:00 UTC
from tests.personas import as_

NIGHTLY = {"name": "nightly", "match": {"target": "db1"}, "window": "02:00-04:00 UTC"}
ONE_OFF = {
    "name": "disk-swap",
    "match": ["target=~db1|db2"],
    "start": "2026-11-27T02:00:00Z",
    "end": "2026-11-27T03:00:00Z",
    "comment": "CHG-42",
}
NODE_DOWN = {"source": {"alertname": "NodeDown", "severity": "critical"}, "target": ["alertname=~Instance.*"]}


def settings(windows: Sequence[object] = (), inhibit: Sequence[object] = ()) -> IncidentSettings:
    return IncidentSettings.model_validate({"maintenance_windows": windows, "inhibit": inhibit})


def alert(name: str, status: AlertStatus = AlertStatus.firing, **labels: str) -> AlertIn:
    return AlertIn(
        source="native", labels={"alertname": name, **labels}, status=status, severity=Severity.critical
    )


def deliver(
    store: Store,
    now: datetime,
    config: IncidentSettings,
    *alerts: AlertIn,
    maintenance_tasks: Collection[str] = (),
) -> list[Delivery]:
    with store.write() as s:
        return ingest(s, alerts, now=now, settings=config, actor="test", maintenance_tasks=maintenance_tasks)


def reasons(done: list[Delivery]) -> list[str | None]:
    return [d.row.muted_by if d.row is not None else None for d in done]


def events(store: Store, kind: str) -> list[tuple[str, dict[str, object]]]:
    with store.read() as s:
        rows = s.scalars(select(EventRow).where(EventRow.kind == kind).order_by(EventRow.id))
        return [(r.subject, r.payload) for r in rows]


def test_a_recurring_window_mutes_matching_alerts_only_while_it_is_open(store):
    config = settings([NIGHTLY])
    before = deliver(store, T0 + timedelta(minutes=59), config, alert("DiskFull", target="db1"))
    assert (before[0].outcome, reasons(before)) == ("created", [None])

    during = deliver(
        store,
        T0 + timedelta(hours=1, minutes=30),
        config,
        alert("Slow", target="db1"),
        alert("Slow", target="db2"),
    )
    assert [d.outcome for d in during] == ["muted", "created"]
    assert reasons(during) == ["window:nightly", None]
    assert during[0].incident is None and during[0].row.incident_id is None
    assert during[1].incident is not None
    muted = events(store, "alert.muted")
    assert muted == [(f"alert:{during[0].row.id}", {**muted[0][1], "by": "window:nightly"})]

    at_the_end = deliver(store, T0 + timedelta(hours=3), config, alert("Late", target="db1"))
    assert (at_the_end[0].outcome, reasons(at_the_end)) == ("created", [None])  # 04:00 is outside


def test_a_one_off_window_mutes_between_its_start_and_its_end(store):
    config = settings([ONE_OFF])
    moments = [
        T0 + timedelta(minutes=59),
        T0 + timedelta(hours=1),
        T0 + timedelta(hours=2) - timedelta(seconds=1),
    ]
    outcomes = [deliver(store, at, config, alert(f"A{i}", target="db2"))[0] for i, at in enumerate(moments)]
    assert [(d.outcome, d.row.muted_by) for d in outcomes] == [
        ("created", None),
        ("muted", "window:disk-swap"),
        ("muted", "window:disk-swap"),
    ]
    after = deliver(store, T0 + timedelta(hours=2), config, alert("A3", target="db2"))
    assert after[0].outcome == "created"


def test_a_firing_source_inhibits_targets_with_equal_labels_until_it_resolves(store):
    config = settings(inhibit=[{**NODE_DOWN, "equal": ["node"]}])
    (node_down,) = deliver(store, T0, config, alert("NodeDown", node="a", severity="critical"))
    assert node_down.outcome == "created"
    later = T0 + timedelta(minutes=1)
    on_a, on_b = deliver(
        store, later, config, alert("InstanceDown", node="a"), alert("InstanceDown", node="b")
    )
    assert (on_a.outcome, on_a.row.muted_by) == ("muted", f"inhibited:{node_down.row.id}")
    assert (on_b.outcome, on_b.row.muted_by) == ("created", None)

    deliver(store, later, config, alert("NodeDown", AlertStatus.resolved, node="a", severity="critical"))
    (after,) = deliver(store, later, config, alert("InstanceDown", node="a", instance="a:9100"))
    assert (after.outcome, after.row.muted_by) == ("created", None)


def test_a_source_earlier_in_the_same_batch_inhibits_and_a_resolution_in_it_stops_that(store):
    config = settings(inhibit=[{**NODE_DOWN, "equal": ["node"]}])
    source = alert("NodeDown", node="a", severity="critical")
    done = deliver(
        store,
        T0,
        config,
        alert("InstanceDown", node="a", instance="1"),  # before its source: nothing inhibits it yet
        source,
        alert("InstanceDown", node="a", instance="2"),
        alert("NodeDown", AlertStatus.resolved, node="a", severity="critical"),
        alert("InstanceDown", node="a", instance="3"),
    )
    assert [d.outcome for d in done] == ["created", "created", "muted", "resolved", "created"]
    assert done[2].row.muted_by == f"inhibited:{done[1].row.id}"


def test_an_alert_matching_both_sides_does_not_inhibit_itself_but_inhibits_others(store):
    config = settings(
        inhibit=[{"source": {"severity": "critical"}, "target": {"team": "db"}, "equal": ["node"]}]
    )
    (first,) = deliver(store, T0, config, alert("Primary", node="a", severity="critical", team="db"))
    assert first.outcome == "created"
    (second,) = deliver(store, T0, config, alert("Replica", node="a", severity="critical", team="db"))
    assert second.row.muted_by == f"inhibited:{first.row.id}"


def test_a_muted_alert_or_one_not_matching_the_source_inhibits_nothing(store):
    config = settings(inhibit=[{**NODE_DOWN, "equal": ["node"]}])
    with store.write() as s:
        create_silence(
            s,
            matchers=[Matcher.parse("node=a")],
            starts_at=T0,
            ends_at=T0 + timedelta(hours=1),
            created_by="user:olga",
            comment="rack move",
            now=T0,
        )
    (silenced,) = deliver(store, T0, config, alert("NodeDown", node="a", severity="critical"))
    assert silenced.row.muted_by == "silence:1"
    _, through = deliver(store, T0, config, alert("NodeDown", node="b"), alert("InstanceDown", node="b"))
    assert through.outcome == "created"  # a NodeDown without severity=critical is no source
    (other,) = deliver(store, T0 + timedelta(hours=1), config, alert("InstanceDown", node="a", instance="x"))
    assert other.outcome == "created"  # the silence ended; its NodeDown is muted, so inhibits nothing


def test_a_silence_is_reported_before_a_window_before_maintenance_before_inhibition(store):
    rule = {**NODE_DOWN, "equal": ["target"]}
    at = T0 + timedelta(hours=1, minutes=30)  # the nightly window on db1 is open
    (source,) = deliver(
        store, T0, settings(inhibit=[rule]), alert("NodeDown", target="db1", severity="critical")
    )
    with store.write() as s:
        silence = create_silence(
            s,
            matchers=[Matcher.parse("target=db1")],
            starts_at=T0,
            ends_at=T0 + timedelta(hours=4),
            created_by="user:olga",
            comment="replacing db1",
            now=T0,
        )
        s.add(running_run("vacuum", "db1", at))

    def reason(n: int, windows: list[dict[str, object]], tasks: set[str]) -> str | None:
        labels = {"target": "db1", "n": str(n)}
        config = settings(windows, inhibit=[rule])
        (d,) = deliver(store, at, config, alert("InstanceDown", **labels), maintenance_tasks=tasks)
        return d.row.muted_by

    assert reason(1, [NIGHTLY], {"vacuum"}) == f"silence:{silence.id}"
    with store.write() as s:
        expire_silence(s, silence.id, now=at, actor="user:olga")
    assert reason(2, [NIGHTLY], {"vacuum"}) == "window:nightly"
    assert reason(3, [], {"vacuum"}) == "maintenance:vacuum"
    assert reason(4, [], set()) == f"inhibited:{source.row.id}"


def running_run(task: str, target: str, at: datetime) -> RunRow:
    return RunRow(
        id=f"{task}-{target}",
        task=task,
        target=target,
        kind="command",
        trigger="schedule",
        scheduled_for=at,
        started_at=at,
        state="running",
        owner="test",
    )


def test_a_muted_alert_repeated_after_its_window_closed_is_unmuted_and_opens_an_incident(store):
    config = settings([NIGHTLY])
    disk = alert("DiskFull", target="db1")
    (first,) = deliver(store, T0 + timedelta(hours=1), config, disk)
    assert first.outcome == "muted"
    (still,) = deliver(store, T0 + timedelta(hours=2), config, disk)  # the window is still open
    assert (still.outcome, still.row.muted_by, still.incident) == ("updated", "window:nightly", None)

    (repeat,) = deliver(store, T0 + timedelta(hours=3, minutes=5), config, disk)
    assert repeat.outcome == "unmuted"
    assert repeat.row.id == first.row.id and repeat.row.muted_by is None
    assert repeat.incident is not None and repeat.row.incident_id == repeat.incident.id
    unmuted = events(store, "alert.unmuted")
    assert [(subject, payload["was"]) for subject, payload in unmuted] == [
        (f"alert:{first.row.id}", "window:nightly")
    ]
    (again,) = deliver(store, T0 + timedelta(hours=3, minutes=10), config, disk)
    assert (again.outcome, again.row.received) == ("updated", 4)
    with store.read() as s:
        assert len(s.scalars(select(IncidentRow)).all()) == 1


def test_a_muted_alert_that_resolves_never_opens_an_incident(store):
    config = settings([NIGHTLY])
    deliver(store, T0 + timedelta(hours=1), config, alert("DiskFull", target="db1"))
    (resolved,) = deliver(
        store, T0 + timedelta(hours=4), config, alert("DiskFull", AlertStatus.resolved, target="db1")
    )
    assert resolved.outcome == "resolved"
    with store.read() as s:
        assert s.scalars(select(IncidentRow)).all() == []
        assert s.scalar(select(AlertRow.muted_by)) == "window:nightly"  # it says why it never paged


# --- a task with mute_alerts, through the real engine, the API and the CLI

MAINTENANCE_PLAN = """
    targets:
      - {name: db1, kind: database}
      - {name: db2, kind: database}
    tasks:
      - name: vacuum
        kind: command
        targets: [db1]
        schedule: {every: 1h}
        params: {argv: ["true"]}
        mute_alerts: true
      - name: db-check
        kind: command
        targets: [db1, db2]
        schedule: {every: 1m}
        params: {argv: [sh, -c, "echo slow; exit 2"], read_only: true}
        alert: {after: 1}
    incidents:
      maintenance_windows:
        - {name: nightly, match: {target: db1}, window: "02:00-04:00 UTC", comment: kernel updates}
        - name: disk-swap
          match: ["target=~db1|db2"]
          start: 2026-11-27T00:00:00Z
          end: 2026-11-27T00:30:00Z
"""


@pytest.fixture
def engine(store, write_plan, make_engine) -> Engine:  # type: ignore[no-untyped-def]
    engine: Engine = make_engine(store, write_plan(MAINTENANCE_PLAN))
    assert engine.reload().ok
    return engine


def test_a_running_maintenance_task_mutes_alerts_about_its_target_until_its_run_ends(engine, client, tokens):
    store = engine.store
    orders, _ = engine.tick(engine.clock.now())  # claimed: the vacuum run on db1 is now going on
    vacuum = [o for o in orders if o.task.name == "vacuum"]
    checks = [o for o in orders if o.task.name == "db-check"]
    assert engine.maintenance_tasks == {"vacuum"} and len(vacuum) == 1 and len(checks) == 2

    async def run_orders(batch: list[RunOrder]) -> None:
        await engine.runner.run_all(batch)
        await engine.runner.stop(0)

    run(run_orders(checks))  # both checks fail and raise an alert each, in the recording transaction
    with store.read() as s:
        found = {a.labels["target"]: a for a in s.scalars(select(AlertRow))}
    assert (found["db1"].muted_by, found["db1"].incident_id) == ("maintenance:vacuum", None)
    assert (found["db2"].muted_by, found["db2"].incident_id is not None) == (None, True)

    body = [{"labels": {"alertname": "Replication", "target": "db1"}, "severity": "critical"}]
    sent = client.post("/api/v1/alerts", json=body, headers=as_(tokens, "rob")).json()["alerts"]
    assert sent[0]["outcome"] == "muted"  # the API knows the plan's maintenance tasks too

    run(run_orders(vacuum))
    engine.clock.advance(1)
    body[0]["labels"]["alertname"] = "Lag"
    sent = client.post("/api/v1/alerts", json=body, headers=as_(tokens, "rob")).json()["alerts"]
    assert sent[0]["outcome"] == "created" and sent[0]["incident_id"] is not None


def test_the_api_lists_declared_windows_open_now_and_next(engine, client, tokens):
    engine.clock.set(T0 + timedelta(hours=1, minutes=30))
    assert client.get("/api/v1/maintenance-windows").status_code == 401
    found = client.get("/api/v1/maintenance-windows", headers=as_(tokens, "vera")).json()
    nightly, swap = found
    assert (nightly["name"], nightly["open"], nightly["open_until"]) == (
        "nightly",
        True,
        "2026-11-27T04:00:00Z",
    )
    assert (nightly["next_start"], nightly["comment"]) == ("2026-11-28T02:00:00Z", "kernel updates")
    assert (swap["match"], swap["open"], swap["next_start"]) == (["target=~db1|db2"], False, None)


def test_maintd_windows_shows_each_window_from_a_plan_file_or_the_active_plan(
    engine, write_plan, monkeypatch
):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("MAINTD_DATABASE_URL", engine.store.url)
    monkeypatch.delenv("MAINTD_PLAN", raising=False)
    runner = CliRunner()
    args = ["windows", "--at", "2026-11-26T23:00:00Z", "--json"]
    by_file = runner.invoke(app, [*args, "--plan", str(write_plan(MAINTENANCE_PLAN))])
    assert by_file.exit_code == 0, by_file.output
    from_db = runner.invoke(app, args)
    assert from_db.output == by_file.output
    rows = [json.loads(line) for line in by_file.output.splitlines()]
    assert [(r["name"], r["open"], r["next_start"]) for r in rows] == [
        ("nightly", False, "2026-11-27T02:00:00Z"),
        ("disk-swap", False, "2026-11-27T00:00:00Z"),
    ]
    shown = runner.invoke(app, ["windows", "--at", "2026-11-27T00:10:00Z"])
    assert shown.exit_code == 0 and "open until 2026-11-27 00:30:00" in shown.output
