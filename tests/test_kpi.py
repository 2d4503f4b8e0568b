"""KPIs from recorded rows, each checked against a figure worked out by hand."""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta
from typing import Any

import pytest

from maintd.kpi.model import nearest_rank
from maintd.kpi.report import compute
from maintd.store.models import IncidentRow, NotificationRow, PostmortemActionRow, RunRow
from tests.conftest import T0

DAY = timedelta(days=1)
END = T0 + 30 * DAY  # the report covers [T0, END)
_ids = itertools.count()


def a_run(started: datetime, **fields: Any) -> RunRow:
    values: dict[str, Any] = {
        "task": "t",
        "target": "web",
        "kind": "http",
        "trigger": "schedule",
        "status": "ok",
        "state": "finished",
        "preventive": True,
        "dry_run": False,
        "duration_ms": 10.0,
        "metrics": {},
    }
    values.update(fields)
    return RunRow(
        id=f"r{next(_ids)}",
        attempt=1,
        scheduled_for=started,
        started_at=started,
        finished_at=started + timedelta(milliseconds=values["duration_ms"]),
        in_window=True,
        output="",
        owner="test",
        **values,
    )


def an_incident(priority: str, opened: datetime, ack_after: float | None, resolve_after: float | None,
                breached: bool = False) -> IncidentRow:  # fmt: skip
    return IncidentRow(
        title="x",
        priority=priority,
        state="resolved" if resolve_after is not None else "triggered",
        group_key=f"g{next(_ids)}",
        opened_at=opened,
        ack_deadline=opened + timedelta(minutes=15),
        acknowledged_at=opened + timedelta(seconds=ack_after) if ack_after is not None else None,
        resolved_at=opened + timedelta(seconds=resolve_after) if resolve_after is not None else None,
        breached_at=opened + timedelta(minutes=15) if breached else None,
        labels={},
    )


def report(store, rows: list[Any]):  # type: ignore[no-untyped-def]
    with store.write() as s:
        s.add_all(rows)
    with store.read() as s:
        return compute(s, end=END, period=30 * DAY, now=END)


def test_nearest_rank_percentiles_are_values_from_the_data():
    assert nearest_rank([], 0.5) is None
    assert nearest_rank([7.0], 0.9) == 7.0
    assert nearest_rank([4.0, 1.0, 3.0, 2.0], 0.5) == 2.0  # ceil(0.5*4) = 2nd smallest
    assert nearest_rank([float(v) for v in range(1, 11)], 0.9) == 9.0
    assert nearest_rank([float(v) for v in range(1, 12)], 0.9) == 10.0  # ceil(9.9) = 10th


def test_mtta_and_mttr_by_priority_count_only_incidents_opened_in_the_period(store):
    rows = [
        an_incident("P1", T0 + DAY, 60, 600),
        an_incident("P1", T0 + 2 * DAY, 120, 1800, breached=True),
        an_incident("P1", T0 + 3 * DAY, 300, None),  # still open: counts for MTTA only
        an_incident("P1", T0 - DAY, 1, 1),  # before the period
        an_incident("P3", T0 + DAY, None, None),
    ]
    r = report(store, rows)
    assert r.get("incidents.count.P1").value == 3
    assert r.get("incidents.mtta.P1").value == 160.0  # (60 + 120 + 300) / 3
    assert r.get("incidents.mtta_p50.P1").value == 120.0
    assert r.get("incidents.mtta_p90.P1").value == 300.0
    assert r.get("incidents.mttr.P1").value == 1200.0  # (600 + 1800) / 2
    assert r.get("incidents.mttr.P1").samples == 2
    assert r.get("incidents.mtta.P3").value is None and r.get("incidents.count.P3").value == 1
    assert r.get("incidents.mtta.P0").value is None and r.get("incidents.count.P0").value == 0
    assert r.get("incidents.per_day").value == pytest.approx(4 / 30, abs=1e-3)
    assert r.get("incidents.deadlines_met").value == 75.0  # 3 of 4 not breached
    assert "2 of 3 P1 incidents opened in the period were resolved" in r.get("incidents.mttr.P1").how


def test_preventive_share_and_automation_rate_against_the_seed_targets(store):
    at = T0 + DAY
    rows = [
        *[a_run(at) for _ in range(16)],  # scheduled preventive runs
        a_run(at, trigger="retry"),  # a retry of a scheduled run is still preventive
        a_run(at, trigger="manual"),  # by hand: reactive, not automated
        a_run(at, preventive=False),  # a reactive task (remediation) run by maintd: reactive, automated
        a_run(at, trigger="manual", dry_run=True),  # dry runs never count
        a_run(at, state="interrupted", status=None),  # nor unfinished ones
        a_run(T0 - DAY),  # before the period
        an_incident("P2", at, 60, 60),  # an incident is reactive work too
    ]
    r = report(store, rows)
    preventive = r.get("seed.preventive_share")
    assert preventive.value == pytest.approx(100 * 17 / 20, abs=1e-3)  # 17 / (17 + 1 + 1 + 1)
    assert preventive.met is True and preventive.target == 80.0
    assert "1 runs started by hand, 1 incidents" in preventive.how
    automation = r.get("seed.automation_rate")
    assert automation.value == pytest.approx(100 * 18 / 19, abs=1e-3)
    assert automation.met is True
    assert r.get("maintenance.success_rate").value == 100.0


def test_backup_verifications_restore_time_and_the_latest_drill(store):
    at = T0 + DAY
    rows = [
        a_run(at, kind="backup-files"),
        a_run(at, kind="backup-files", status="critical"),
        a_run(at, kind="backup-postgres", duration_ms=4000.0),
        a_run(at, kind="backup-postgres", duration_ms=6000.0),
        a_run(at, kind="dr-drill", metrics={"rto_seconds": 95.0}),
        a_run(at + DAY, kind="dr-drill", metrics={"rto_seconds": 80.0}),
    ]
    r = report(store, rows)
    assert r.get("maintenance.backups_verified").value == 75.0
    assert r.get("maintenance.backups_verified").met is False
    assert r.get("maintenance.restore_seconds").value == 5.0
    assert r.get("maintenance.dr_rto").value == 80.0


def test_availability_is_time_weighted_and_ignores_time_before_the_first_probe(store):
    hour = timedelta(hours=1)
    # web: unobserved for the first day, then up 30 h, down 2 h (critical), up again until the end.
    up_at = T0 + DAY
    rows = [
        a_run(up_at, duration_ms=0.0),
        a_run(up_at + 30 * hour, status="critical", duration_ms=0.0),
        a_run(up_at + 32 * hour, status="ok", duration_ms=0.0),
        # a second probe task on web that stays ok does not hide the first one's failure
        a_run(up_at, task="tcp-web", kind="tcp", duration_ms=0.0),
        # db was down before the period opened and stayed down for its first 6 hours
        a_run(T0 - hour, target="db", kind="postgres", status="critical", duration_ms=0.0),
        a_run(T0 + 6 * hour, target="db", kind="postgres", duration_ms=0.0),
        # an action's failure is not downtime
        a_run(up_at, target="web", task="logs", kind="logs", status="critical", duration_ms=0.0),
    ]
    r = report(store, rows)
    observed = (29 * DAY).total_seconds()
    assert r.get("availability.web").value == pytest.approx(100 * (observed - 7200) / observed, abs=1e-4)
    assert r.get("availability.web").met is False  # 99.71 % < 99.9 %
    assert r.get("availability.db").value == pytest.approx(100 * (1 - 6 / (30 * 24)), abs=1e-4)


def test_delivered_notifications_and_post_mortem_actions_on_time(store):
    at = T0 + DAY

    def note(status: str) -> NotificationRow:
        return NotificationRow(
            subject=f"incident:{next(_ids)}",
            recipient="person:ada",
            state="triggered",
            step="0",
            status=status,
            channels=[],
            message={},
            created_at=at,
            due_at=at,
        )

    def action(status: str, due: datetime, on_time: bool | None = None) -> PostmortemActionRow:
        return PostmortemActionRow(
            incident_id=1,
            title="fix it",
            owner="ada",
            due_on=due.date(),
            status=status,
            created_at=T0,
            created_by="test",
            completed_at=due if status == "done" else None,
            on_time=on_time,
        )

    rows: list[Any] = [note("sent"), note("sent"), note("sent"), note("failed"), note("pending")]
    rows += [action("done", at, on_time=True) for _ in range(17)]
    rows += [action("done", at, on_time=False), action("open", at), action("cancelled", at)]
    rows += [action("open", END), action("done", T0 - DAY, on_time=False)]  # due day not over / before
    r = report(store, rows)
    assert r.get("delivery.notifications_delivered").value == 75.0
    actions = r.get("seed.postmortem_actions_on_time")
    assert actions.value == pytest.approx(100 * 17 / 19, abs=1e-3) and actions.met is False
    assert actions.target == 95.0 and actions.how.startswith("17 of 19 action items due in the period")


def test_an_empty_store_has_no_figures_to_show_rather_than_zeroes(store):
    r = report(store, [])
    assert r.get("seed.preventive_share").value is None
    assert r.get("seed.preventive_share").met is None
    assert r.get("incidents.mttr.P1").value is None
    assert not [f for f in r.figures if f.group == "availability"]


def test_a_period_must_be_positive(sqlite_store):
    with sqlite_store.read() as s, pytest.raises(ValueError, match="period must be positive"):
        compute(s, end=END, period=timedelta(0), now=END)
