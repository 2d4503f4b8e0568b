"""``maintd report NAME``: a report written as files, on demand. One subcommand per report."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import typer

from maintd.capacity.render import write
from maintd.cli.capacity import (
    AtOption,
    HistoryOption,
    LimitOption,
    MetricOption,
    TargetOption,
    TaskOption,
    compute,
)
from maintd.cli.common import DbOption, console, fail, open_store

app = typer.Typer(help="Write a report as files (HTML with charts, and Markdown).", no_args_is_help=True)


@app.command("capacity")
def capacity(
    out: Path = typer.Option(Path("."), "--out", help="The folder to write into (made if missing)."),
    task: str | None = TaskOption,
    target: str | None = TargetOption,
    metric: str | None = MetricOption,
    limit: float | None = LimitOption,
    history: str = HistoryOption,
    at: str | None = AtOption,
    db: str | None = DbOption,
) -> None:
    """capacity.html (charts inline) and capacity.md (charts as SVG files beside it)."""
    report = compute(task, target, metric, limit, history, at, db)
    try:
        written = write(report, out)
    except OSError as exc:
        fail(f"--out {out}: cannot write the report: {exc.strerror or exc} ({exc.filename or out})")
    for path in written:
        console.print(str(path))


# The KPI report, the monthly review and the monthly audit (maintd.reports, docs/reports.md).
PeriodOption = typer.Option(
    "previous",
    "--period",
    help="previous (the last complete month, or quarter for kpi), current, 2026-10 or 2026-Q3.",
)
OutOption = typer.Option(Path("."), "--out", help="The folder to write into (made if missing).")


def _write_report(name: str, period: str, out: Path, db: str | None) -> None:
    from maintd.reports import build, period_of
    from maintd.reports.render import write as write_report

    now = datetime.now(UTC)
    try:
        span = period_of(name, period, now)
    except ValueError as exc:
        fail(f"--period: {exc}")
    store = open_store(db)
    try:
        with store.read() as session:
            doc = build(name, session, span, now)
    finally:
        store.dispose()
    try:
        written = write_report(doc, out)
    except OSError as exc:
        fail(f"--out {out}: cannot write the report: {exc.strerror or exc} ({exc.filename or out})")
    for path in written:
        console.print(str(path))


@app.command("kpi")
def kpi_report(period: str = PeriodOption, out: Path = OutOption, db: str | None = DbOption) -> None:
    """kpi.html and kpi.md: every KPI of a quarter beside the quarter before, with charts."""
    _write_report("kpi", period, out, db)


@app.command("monthly-review")
def monthly_review(period: str = PeriodOption, out: Path = OutOption, db: str | None = DbOption) -> None:
    """monthly-review.html and .md: metrics and trends, anomalies, opportunities by impact/effort."""
    _write_report("monthly-review", period, out, db)


@app.command("monthly-audit")
def monthly_audit(period: str = PeriodOption, out: Path = OutOption, db: str | None = DbOption) -> None:
    """monthly-audit.html and .md: drift, compliance, performance baseline, capacity, costs, docs."""
    _write_report("monthly-audit", period, out, db)
