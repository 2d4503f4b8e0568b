"""SLOs: the error budget by hand, and burn-rate alerts raised by the engine's tick.

Runs are inserted by hand (a probe task of kind http on target web) and the engine's clock is
moved: every figure below is worked out in the comments next to it.
"""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta

import pytest
from sqlalchemy import select

from maintd.engine import Engine
from maintd.plan.models import Plan
from maintd.slo.budget import evaluate
from maintd.slo.figures import slo_figures
from maintd.store.db import Store
from maintd.store.models import AlertRow, IncidentRow, RunRow
from tests.conftest import T0

MIN = timedelta(minutes=1)
DAY = timedelta(days=1)
_ids = itertools.count()

PLAN = """
    targets:
      - {name: web, kind: service, labels: {team: shop}}
    tasks:
      - name: web-http
        kind: http
        targets: [web]
        schedule: {every: 1m}
        enabled: false              # the runs are inserted by the test
        params: {url: "http://127.0.0.1:9/"}
      - name: other-http
        kind: http
        targets: [web]
        schedule: {every: 1m}
        enabled: false
        params: {url: "http://127.0.0.1:9/"}
    slos:
      - {name: web-avail, target: web, tasks: [web-http]}
"""


def probe(store: Store, at: datetime, status: str, task: str = "web-http") -> None:
    with store.write() as s:
        s.add(
            RunRow(
                id=f"slo{next(_ids)}",
                task=task,
                target="web",
                kind="http",
                attempt=1,
                trigger="schedule",
                scheduled_for=at,
                started_at=at,
                finished_at=at,
                status=status,
                state="finished",
                preventive=True,
                dry_run=False,
                in_window=True,
                duration_ms=0.0,
                output="",
                metrics={},
                owner="test",
            )
        )


def start(store: Store, write_plan, make_engine) -> Engine:  # type: ignore[no-untyped-def]
    engine: Engine = make_engine(store, write_plan(PLAN))
    assert engine.reload().ok
    return engine


def plan_of(engine: Engine) -> Plan:
    assert engine.loaded is not None
    return engine.loaded.plan


def tick_at(engine: Engine, at: datetime) -> None:
    engine.clock.set(at)  # type: ignore[attr-defined]
    engine.tick(at)


def slo_alerts(store: Store) -> dict[str, AlertRow]:
    with store.read() as s:
        rows = s.scalars(select(AlertRow).where(AlertRow.source == "slo").order_by(AlertRow.id)).all()
        s.expunge_all()
    return {f"{r.labels['slo_alert']}:{r.status}": r for r in rows}


def test_the_error_budget_is_the_allowed_bad_time_less_the_downtime(store, write_plan, make_engine):
    engine = start(store, write_plan, make_engine)
    now = T0 + 30 * DAY
    probe(store, T0, "ok")  # the window [T0, T0 + 30d) opens observed and up
    probe(store, T0 + 10 * DAY, "critical")  # down 30 minutes
    probe(store, T0 + 10 * DAY + 30 * MIN, "ok")
    probe(store, T0 + 11 * DAY, "critical", task="other-http")  # not one of the SLO's tasks
    probe(store, T0 + 12 * DAY, "ok", task="other-http")
    probe(store, T0 - DAY, "critical")  # before the window: holds only until the run at T0
    with store.read() as s:
        status = evaluate(s, plan_of(engine).slos[0], now)
        figures = {f.name: f for f in slo_figures(s, now)}
    # allowed: 0.1 % of 30 days = 2,592 s; consumed 1,800 s; remaining 792 s = 30.5556 % of it
    assert status.budget.allowed_seconds == pytest.approx(2592.0)
    assert status.budget.consumed_seconds == 1800.0
    assert status.budget.remaining_seconds == pytest.approx(792.0)
    assert status.budget.remaining_percent == pytest.approx(30.5556, abs=1e-4)
    assert status.availability == pytest.approx(100 * (30 * 86400 - 1800) / (30 * 86400), abs=1e-4)
    assert status.runs == 3
    assert [b.window for b in status.burn_rates] == ["5m", "30m", "1h", "6h", "3d"]
    assert all(b.rate == 0.0 for b in status.burn_rates)  # the last 3 days were all up
    assert not status.page and not status.ticket
    assert figures["slo.web-avail.budget_remaining"].value == pytest.approx(30.5556, abs=1e-4)
    assert figures["slo.web-avail.budget_remaining"].met is True
    assert figures["slo.web-avail.burn_rate.1h"].value == 0.0


def test_an_overspent_budget_goes_negative(sqlite_store, write_plan, make_engine):
    engine = start(sqlite_store, write_plan, make_engine)
    probe(sqlite_store, T0, "ok")
    probe(sqlite_store, T0 + DAY, "critical")  # 1 hour down: 3,600 s of 2,592 allowed
    probe(sqlite_store, T0 + DAY + 60 * MIN, "ok")
    with sqlite_store.read() as s:
        status = evaluate(s, plan_of(engine).slos[0], T0 + 30 * DAY)
    assert status.budget.remaining_seconds == pytest.approx(-1008.0)
    assert status.budget.remaining_percent == pytest.approx(-38.8889, abs=1e-4)


def test_a_fast_burn_pages_only_while_both_the_1h_and_the_5m_windows_exceed_14_4x(
    store, write_plan, make_engine
):
    engine = start(store, write_plan, make_engine)
    probe(store, T0 - 4 * DAY, "ok")  # observed and up for days before
    probe(store, T0 - 20 * MIN, "critical")  # a 2-minute outage that ended 18 minutes ago
    probe(store, T0 - 18 * MIN, "ok")
    tick_at(engine, T0)
    # 1h: 120 s down of 3,600 = 3.33 % / 0.1 % = 33.3x > 14.4; 5m: nothing down = 0x: no page
    assert slo_alerts(store) == {}

    probe(store, T0 + 1 * MIN, "critical")
    tick_at(engine, T0 + 3 * MIN)
    # 5m [T0-2m, T0+3m): 120 s down of 300 = 400x; 1h: 240 s of 3,600 = 66.7x: page.
    # 6h: 240 s of 21,600 = 1.85x < 6; 3d: 240 s of 259,200 = 0.93x < 1: no ticket.
    alerts = slo_alerts(store)
    assert set(alerts) == {"page:firing"}
    page = alerts["page:firing"]
    assert page.severity == "critical"
    assert page.labels == {
        "team": "shop",
        "alertname": "SLOBurnRate",
        "slo": "web-avail",
        "slo_alert": "page",
        "target": "web",
    }
    assert "66.7x over 1h and 400.0x over 5m" in page.summary
    with store.read() as s:
        incident = s.get(IncidentRow, page.incident_id)
        assert incident is not None and incident.priority == "P1"

    probe(store, T0 + 4 * MIN, "ok")
    tick_at(engine, T0 + 12 * MIN)
    # 5m [T0+7m, T0+12m): 0x, so the fast pair stops, though 1h burns at 300 s / 3,600 = 83.3x.
    # The slow pair burns now: 30m 300 s / 1,800 = 166.7x and 6h 300 s / 21,600 = 13.9x > 6;
    # and the ticket: 3d 300 s / 259,200 = 1.16x, 6h 13.9x > 1.
    with store.read() as s:
        pairs = evaluate(s, plan_of(engine).slos[0], T0 + 12 * MIN).pairs
    assert [(p.long, p.short, p.burning) for p in pairs] == [
        ("1h", "5m", False),
        ("6h", "30m", True),
        ("3d", "6h", True),
    ]
    assert pairs[0].long_rate == pytest.approx(83.3333, abs=1e-4) and pairs[0].short_rate == 0.0
    assert set(slo_alerts(store)) == {"page:firing", "ticket:firing"}

    tick_at(engine, T0 + 40 * MIN)  # 5m and 30m hold no downtime: neither page pair burns
    assert set(slo_alerts(store)) == {"page:resolved", "ticket:firing"}


def test_a_short_blip_over_14_4x_in_5m_alone_does_not_page(sqlite_store, write_plan, make_engine):
    engine = start(sqlite_store, write_plan, make_engine)
    probe(sqlite_store, T0 - 4 * DAY, "ok")
    probe(sqlite_store, T0 - 60 * timedelta(seconds=1), "critical")
    probe(sqlite_store, T0 - 30 * timedelta(seconds=1), "ok")
    tick_at(engine, T0)
    # 5m: 30 s of 300 = 100x; 1h: 30 s of 3,600 = 8.3x < 14.4: no page
    assert slo_alerts(sqlite_store) == {}
    with sqlite_store.read() as s:
        rates = {b.window: b.rate for b in evaluate(s, plan_of(engine).slos[0], T0).burn_rates}
    assert rates["5m"] == pytest.approx(100.0)
    assert rates["1h"] == pytest.approx(8.3333, abs=1e-4)


def test_a_slow_burn_opens_a_ticket_and_recovery_resolves_it(store, write_plan, make_engine):
    engine = start(store, write_plan, make_engine)
    probe(store, T0 - 4 * DAY, "ok")
    probe(store, T0 - 2 * 60 * MIN - 5 * MIN, "critical")  # 5 minutes down, ended 2 hours ago
    probe(store, T0 - 2 * 60 * MIN, "ok")
    tick_at(engine, T0)
    # 3d: 300 s of 259,200 = 1.16x > 1 and 6h: 300 s of 21,600 = 13.9x > 1: ticket.
    # Page pairs: 6h 13.9x > 6 but 30m: 0x; 1h: 0x: no page.
    alerts = slo_alerts(store)
    assert set(alerts) == {"ticket:firing"}
    assert alerts["ticket:firing"].severity == "warning"
    with store.read() as s:
        incident = s.get(IncidentRow, alerts["ticket:firing"].incident_id)
        assert incident is not None and incident.priority == "P3"

    tick_at(engine, T0 + 3 * 60 * MIN)  # the outage is still in the last 6 hours: still a ticket
    assert set(slo_alerts(store)) == {"ticket:firing"}
    tick_at(engine, T0 + 4 * 60 * MIN + MIN)  # 6h now holds no downtime: 0x, resolved
    assert set(slo_alerts(store)) == {"ticket:resolved"}


def test_the_engine_evaluates_at_most_once_a_minute(sqlite_store, write_plan, make_engine):
    engine = start(sqlite_store, write_plan, make_engine)
    probe(sqlite_store, T0 - 4 * DAY, "ok")
    tick_at(engine, T0)
    probe(sqlite_store, T0, "critical")
    tick_at(engine, T0 + 30 * timedelta(seconds=1))  # burning, but evaluated 30 s ago
    assert slo_alerts(sqlite_store) == {}
    tick_at(engine, T0 + MIN)
    assert set(slo_alerts(sqlite_store)) == {"page:firing"}
