"""The reports' edges: the seed's maintenance ROI KPI, the ``report`` task kind and
``maintd report kpi|monthly-review|monthly-audit``."""

from __future__ import annotations

from datetime import timedelta

import pytest
from pydantic import ValidationError
from typer.testing import CliRunner

from maintd.checks.base import Status
from maintd.cli.app import app
from maintd.kpi.report import compute
from maintd.kpi.roi import measure
from maintd.plan.costs import ComplianceCheck, CostModel
from maintd.tasks.report import ReportConfig
from tests.conftest import T0, run
from tests.kinds import run_kind
from tests.test_reports import JUL, OCT, a_plan, a_run, an_incident, insert

START = T0 - timedelta(days=30)
COSTS = {
    "staff_hourly_rate": 100, "tool_licences_per_month": 300, "infrastructure_overhead_per_month": 100,
    "downtime_cost_per_minute": 2, "cost_per_incident": 50, "baseline_availability": 99.0,
    "baseline_incidents_per_month": 5,
}  # fmt: skip


def test_the_maintenance_roi_is_the_seeds_formula_over_the_measured_figures(store):
    insert(store, [
        a_plan({"costs": COSTS}, at=START - timedelta(days=1)),
        a_run(START),  # the only probe run: web up the whole 30 days (100 %)
        a_run(START + timedelta(days=1), task="fix", kind="command", trigger="manual",
              duration_ms=5_400_000.0),
        a_run(START + timedelta(days=2), task="backup", kind="backup-postgres", duration_ms=1_800_000.0),
        an_incident(START + timedelta(days=3)), an_incident(START + timedelta(days=4)),
    ])  # fmt: skip
    with store.read() as s:
        figure = compute(s, end=T0, period=timedelta(days=30), now=T0).get("seed.maintenance_roi")
        roi = measure(s, START, T0, CostModel.model_validate(COSTS))
    # cost: staff 1.5 h (manual) + 0.5 h (backup-postgres) = 2 h x 100 + 300 + 100 = 600
    # value: (100 - 99) % of 43,200 min = 432 min x 2 = 864; (5 - 2 incidents) x 50 = 150; 1,014
    # ROI: (1014 - 600) / 600 x 100 = 69 %
    assert (roi.staff_hours, roi.maintenance_cost, roi.downtime_prevented_min) == (2.0, 600.0, 432.0)
    assert (roi.incidents_prevented, roi.value_delivered) == (3.0, 1014.0)
    assert figure.value == 69.0 and roi.roi == 69.0
    assert "baseline 99 % (assumption)" in figure.how and "= 600.00 EUR" in figure.how


def test_no_cost_model_gives_no_roi_and_says_why(store):
    with store.read() as s:
        figure = compute(s, end=T0, period=timedelta(days=30), now=T0).get("seed.maintenance_roi")
    assert figure.value is None and "no maintenance cost in the model" in figure.how


def test_a_compliance_check_names_a_task_or_a_bounded_kpi():
    assert ComplianceCheck.model_validate({"name": "a", "kpi": "seed.automation_rate", "min": 90}).min == 90
    for bad, why in (({"name": "a"}, "exactly one of task or kpi"),
                     ({"name": "a", "kpi": "x"}, "needs min or max"),
                     ({"name": "a", "task": "t", "max": 1}, "min and max go with kpi")):  # fmt: skip
        with pytest.raises(ValidationError, match=why):
            ComplianceCheck.model_validate(bad)


def test_the_report_kind_writes_the_files_and_a_dry_run_writes_nothing(sqlite_store, tmp_path):
    insert(sqlite_store, [an_incident(JUL + timedelta(days=2), ack=60, solve=120)])
    out = tmp_path / "reports"
    params = {"report": "kpi", "out": str(out), "database": sqlite_store.url}  # previous quarter of T0: Q3
    dry = run(run_kind("report", params, dry_run=True))
    assert dry.status is Status.ok and "dry run: would write 4 files" in dry.output, dry.output
    assert not out.exists() and len(dry.changes) == 4
    result = run(run_kind("report", params))
    assert result.status is Status.ok and "KPI report 2026-Q3 (2026-07-01 to 2026-10-01)" in result.output
    assert {c.target for c in result.changes} == {c.target for c in dry.changes}
    assert "<svg" in (out / "kpi.html").read_text() and (out / "kpi-charts" / "mtta-mttr.svg").exists()
    assert result.metrics == {"sections": 5.0, "charts": 2.0}  # the fifth: open reviews


def test_the_report_kind_names_an_unreadable_database_and_a_bad_period(tmp_path):
    gone = "postgresql://postgres:hunter2@127.0.0.1:1/nowhere?connect_timeout=1"
    result = run(run_kind("report", {"report": "monthly-audit", "out": str(tmp_path), "database": gone}))
    assert result.status is Status.critical
    assert "cannot read maintd's records from postgresql" in result.output
    assert "hunter2" not in result.output and not any(tmp_path.iterdir())
    with pytest.raises(ValidationError, match="is not previous, current, a month"):
        ReportConfig.model_validate({"report": "kpi", "out": "/tmp/x", "period": "last week"})


def test_the_cli_writes_each_report(sqlite_store, monkeypatch, tmp_path):
    monkeypatch.setenv("MAINTD_DATABASE_URL", sqlite_store.url)
    insert(sqlite_store, [a_run(OCT + timedelta(days=i)) for i in range(3)])
    runner = CliRunner()
    for name, period in (("kpi", "2026-Q4"), ("monthly-review", "2026-10"), ("monthly-audit", "2026-10")):
        out = tmp_path / name
        result = runner.invoke(app, ["report", name, "--period", period, "--out", str(out)],
                               catch_exceptions=False)  # fmt: skip
        assert result.exit_code == 0, result.output
        assert f"{name}.html" in result.output and (out / f"{name}.md").read_text().startswith("# ")
        assert "<svg" in (out / f"{name}.html").read_text()
    bad = runner.invoke(app, ["report", "kpi", "--period", "2026-13"])
    assert bad.exit_code == 1 and "--period: '2026-13': no month 13" in bad.output


@pytest.mark.parametrize("model", [CostModel, ComplianceCheck])
def test_the_cost_model_and_compliance_checks_are_documented(model):
    from tests.test_docs import DOCS, documented_fields

    missing = set(model.model_fields) - documented_fields(DOCS / "plan.md")
    assert not missing, f"docs/plan.md does not document {model.__name__} fields {sorted(missing)}"
