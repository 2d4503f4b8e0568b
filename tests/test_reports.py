"""The reports room: the quarterly KPI report, the monthly review and the monthly audit, each built
from rows inserted here, its sections and figures checked against hand-computed values."""

from __future__ import annotations

import itertools
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from maintd.reports import build, period_of
from maintd.reports.period import parse
from maintd.reports.render import html, markdown, write
from maintd.store.models import EventRow, IncidentRow, PlanVersionRow, RunRow
from tests.conftest import T0

_ids = itertools.count()
OCT = datetime(2026, 10, 1, tzinfo=UTC)
SEP = datetime(2026, 9, 1, tzinfo=UTC)
JUL = datetime(2026, 7, 1, tzinfo=UTC)
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)


def a_run(started: datetime, **fields: Any) -> RunRow:
    values: dict[str, Any] = {
        "task": "web-probe", "target": "web", "kind": "http", "trigger": "schedule", "status": "ok",
        "state": "finished", "preventive": True, "dry_run": False, "duration_ms": 10.0, "metrics": {},
        "output": "",
    }  # fmt: skip
    values.update(fields)
    return RunRow(id=f"rep{next(_ids)}", attempt=1, scheduled_for=started, started_at=started,
                  finished_at=started + timedelta(milliseconds=values["duration_ms"]), in_window=True,
                  owner="test", **values)  # fmt: skip


def an_incident(opened: datetime, priority: str = "P1", ack: float | None = None, solve: float | None = None,
                alertname: str = "HighLatency") -> IncidentRow:  # fmt: skip
    return IncidentRow(
        title="incident", priority=priority, state="resolved" if solve else "triggered",
        group_key=f"g{next(_ids)}", opened_at=opened, ack_deadline=opened + timedelta(minutes=15),
        acknowledged_at=opened + timedelta(seconds=ack) if ack is not None else None,
        resolved_at=opened + timedelta(seconds=solve) if solve is not None else None,
        labels={"alertname": alertname},
    )  # fmt: skip


def a_plan(document: dict[str, Any], at: datetime = SEP) -> PlanVersionRow:
    return PlanVersionRow(loaded_at=at, digest=f"d{next(_ids)}", source="test", document=document)


def insert(store, rows: list[Any]) -> None:  # type: ignore[no-untyped-def]
    with store.write() as s:
        s.add_all(rows)


def report(store, name: str, spec: str):  # type: ignore[no-untyped-def]
    with store.read() as s:
        return build(name, s, period_of(name, spec, T0), T0)


def rows_of(doc, title: str) -> list[list[str]]:  # type: ignore[no-untyped-def]
    return next(b.rows for b in doc.section(title).blocks if hasattr(b, "rows"))


def test_periods_are_calendar_months_and_quarters_with_the_one_before():
    oct_ = parse("previous", "month", T0)  # T0 is 2026-11-27
    assert (oct_.start, oct_.end, oct_.label) == (OCT, datetime(2026, 11, 1, tzinfo=UTC), "2026-10")
    assert parse("current", "month", T0).label == "2026-11"
    q3 = parse("previous", "quarter", T0)
    assert (q3.start, q3.end, q3.label) == (JUL, OCT, "2026-Q3")
    assert q3.previous().label == "2026-Q2" and parse("2026-Q1", "month", T0).previous().label == "2025-Q4"
    assert parse("2026-01", "month", T0).previous().label == "2025-12"
    for bad in ("2026-13", "last", "2026-Q5"):
        with pytest.raises(ValueError, match=re.escape(repr(bad))):
            parse(bad, "month", T0)


def test_the_kpi_report_sets_each_kpi_beside_the_quarter_before_with_charts(store):
    insert(store, [
        an_incident(JUL + 2 * HOUR, "P1", ack=120, solve=600),  # week from 07-01
        an_incident(JUL + 8 * DAY, "P2", ack=240, solve=1800),  # week from 07-08
        an_incident(datetime(2026, 8, 3, tzinfo=UTC), "P1", ack=60, solve=None),  # August
        an_incident(datetime(2026, 5, 5, tzinfo=UTC), "P1", ack=30, solve=60),  # Q2
    ])  # fmt: skip
    doc = report(store, "kpi", "2026-Q3")
    assert [s.title for s in doc.sections] == [
        "Targets", "KPIs", "Incidents per week by priority", "MTTA and MTTR per month",
        "Architecture and other reviews"]  # fmt: skip
    kpis = {r[1]: r for r in rows_of(doc, "KPIs")}
    assert kpis["P1 incidents"][2:5] == ["2", "1", "↑"]
    assert kpis["Mean time to acknowledge (P1)"][2:5] == ["90 s", "30 s", "↑"]  # (120 + 60) / 2
    weekly = rows_of(doc, "Incidents per week by priority")
    assert len(weekly) == 14  # 92 days: 13 weeks and a day
    assert weekly[0] == ["2026-07-01", "0", "1", "0", "0"] and weekly[1] == ["2026-07-08", "0", "0", "1", "0"]
    assert weekly[4] == ["2026-07-29", "0", "1", "0", "0"]  # 08-03 falls in the week from 07-29
    monthly = rows_of(doc, "MTTA and MTTR per month")
    # July: MTTA (120 + 240) / 2 s = 3 min, MTTR (600 + 1800) / 2 s = 20 min
    assert monthly == [
        ["2026-07", "2", "3.0", "20.0"],
        ["2026-08", "1", "1.0", "-"],
        ["2026-09", "0", "-", "-"],
    ]
    page = html(doc)
    assert page.count("<svg") == 2 and 'class="bar"' in page and 'class="series"' in page


def test_the_monthly_review_finds_anomalies_and_ranks_opportunities_by_impact_over_effort(store):
    sep = [a_run(SEP + i * DAY) for i in range(10)]
    oct_ = [a_run(OCT + i * DAY, status="critical" if i < 4 else "ok") for i in range(10)]
    events = [EventRow(at=OCT + i * DAY, kind="remediation.executed", subject="incident:1", actor="maintd",
                       payload={"playbook": "restart-web", "outcome": outcome})
              for i, outcome in enumerate(["success", "failure"])]  # fmt: skip
    incidents = [an_incident(OCT + i * DAY, alertname="<script>alert(1)</script>") for i in range(2)]
    insert(store, [*sep, *oct_, *events, *incidents])
    doc = report(store, "monthly-review", "2026-10")
    assert [s.title for s in doc.sections] == [
        "Metrics and trends", "Anomalies", "Opportunities ranked by impact / effort"]  # fmt: skip
    anomalies = doc.section("Anomalies").blocks[0].items  # type: ignore[union-attr]
    assert "task web-probe: failure rate rose from 0 % to 40 % (4 of 10 runs not ok)" in anomalies
    assert "incidents of type <script>alert(1)</script>: 0 → 2" in anomalies
    ranked = rows_of(doc, "Opportunities ranked by impact / effort")
    # the playbook: impact 4 / effort 3 = 1.33; the task: 4 failed runs -> impact 2 / effort 2 = 1
    assert [r[:5] for r in ranked] == [
        ["1", "make the playbook restart-web reliable", "4", "3", "1.33"],
        ["2", "fix the failing task web-probe", "2", "2", "1"],
    ]
    page = html(doc)
    assert "<script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<script>" not in markdown(doc) and "&lt;script&gt;" in markdown(doc)
    assert "<svg" in page


def test_the_monthly_audit_composes_drift_compliance_baseline_costs_and_documents(store, tmp_path):
    plan = {
        "costs": {"currency": "EUR", "staff_hourly_rate": 100, "tool_licences_per_month": 310},
        "compliance": [
            {"name": "probe-ok", "task": "web-probe", "description": "the web answers"},
            {"name": "drift-clean", "task": "config-drift"},
            {"name": "automated", "kpi": "seed.automation_rate", "min": 90},
        ],
    }
    rows = [
        a_plan(plan),
        *[a_run(SEP + i * DAY, duration_ms=100.0, metrics={"response_ms": 50}) for i in range(3)],
        *[a_run(OCT + i * DAY, duration_ms=200.0, metrics={"response_ms": 55}) for i in range(3)],
        a_run(OCT + 5 * DAY, task="config-drift", target="<b>host</b>", kind="drift", status="warning",
              metrics={"checked": 4.0, "drifted": 1.0}, output="drift (desired /srv): 1 of 4 items drifted"),
        a_run(OCT + 6 * DAY, task="restore", kind="backup-postgres", trigger="manual",
              duration_ms=3_600_000.0),
    ]  # fmt: skip
    insert(store, rows)
    doc = report(store, "monthly-audit", "2026-10")
    assert [s.title for s in doc.sections] == [
        "Summary", "Configuration drift", "Compliance", "Performance baseline comparison",
        "Capacity planning review", "Cost optimisation", "Documentation accuracy",
        "Architecture and other reviews"]  # fmt: skip
    [drift] = rows_of(doc, "Configuration drift")
    assert drift[:5] == ["config-drift", "<b>host</b>", "2026-10-06 00:00", "warning", "1 of 4"]
    compliance = {r[0]: r[2] for r in rows_of(doc, "Compliance")}
    # automation: 6 of 7 October runs scheduled (85.7 %) < 90
    assert compliance == {"probe-ok": "pass", "drift-clean": "FAIL", "automated": "FAIL"}
    baseline = {(r[0], r[1]): r[2:5] for r in rows_of(doc, "Performance baseline comparison")}
    assert baseline[("web-probe", "duration_ms")] == ["100", "200", "+100.0 %"]
    assert baseline[("web-probe", "response_ms")] == ["50", "55", "+10.0 %"]
    costs = doc.section("Cost optimisation").blocks[1].items  # type: ignore[union-attr]
    # October is 31 days = 1.033 months of 30; staff: the manual restore's hour (7 runs: the hour and
    # the drift run, a maintenance kind, of 10 ms); 1.000 h x 100 + 310 x 1.033 = 420.33
    assert any(line.endswith("= 420.33 EUR") for line in costs), costs
    summary = doc.section("Summary").blocks[0].items  # type: ignore[union-attr]
    assert "Compliance: 2 of 3 checks failed" in summary
    assert "Configuration drift: 1 of 1 drift checks found drift or failed" in summary
    written = write(doc, tmp_path)
    page = (tmp_path / "monthly-audit.html").read_text()
    assert "<b>host</b>" not in page and "&lt;b&gt;host&lt;/b&gt;" in page and "<svg" in page
    md = (tmp_path / "monthly-audit.md").read_text()
    [link] = re.findall(r"\]\((monthly-audit-charts/[^)]+\.svg)\)", md)
    assert (tmp_path / link) in written and (tmp_path / link).read_text().startswith("<svg")
    assert markdown(doc) == md
