"""The seed's monthly system audit, composed from what the other parts measured: configuration
drift, compliance, performance against last month's baseline, capacity, costs, documentation,
and the reviews still open with their overdue findings."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from maintd import charts
from maintd.capacity.model import CapacityReport
from maintd.capacity.render import COLUMNS as CAPACITY_COLUMNS
from maintd.capacity.render import row as capacity_row
from maintd.kpi.model import Report
from maintd.kpi.roi import measure, stored_costs
from maintd.lifecycle.documents import DocStatus
from maintd.reports.compliance import evaluate, stored_checks
from maintd.reports.measure import metric_means
from maintd.reports.model import Bullets, Chart, Document, Section, Table, Text
from maintd.reports.period import Period
from maintd.reports.reviews import reviews_section  # open reviews, overdue findings (maintd.reviews)
from maintd.store.models import RunRow

DRIFT_KIND = "drift"
MOVED = 20.0  # % change from the baseline that the performance comparison flags


def build(
    session: Session, period: Period, kpis: Report, docs: list[DocStatus], capacity: CapacityReport | None,
) -> Document:  # fmt: skip
    doc = Document("monthly-audit", f"Monthly system audit {period.label}", period.start, period.end,
                   kpis.computed_at)  # fmt: skip
    summary = Section("Summary")
    doc.sections.append(summary)
    parts = [
        _drift(session, period.end),
        _compliance(session, kpis),
        _performance(session, period),
        _capacity(capacity),
        _costs(session, period),
        _documentation(docs),
        reviews_section(session, period.end),
    ]
    doc.sections += [section for section, _ in parts]
    summary.blocks.append(Bullets([f"{section.title}: {verdict}" for section, verdict in parts]))
    return doc


def _drift(session: Session, until: datetime) -> tuple[Section, str]:
    latest: dict[tuple[str, str], RunRow] = {}
    for run in session.scalars(
        select(RunRow).where(RunRow.kind == DRIFT_KIND, RunRow.state == "finished", RunRow.dry_run.is_(False),
                             RunRow.started_at < until).order_by(RunRow.started_at)
    ):  # fmt: skip
        latest[(run.task, run.target)] = run
    rows, drifted = [], 0
    for (task, target), run in sorted(latest.items()):
        m = run.metrics or {}
        drifted += bool(m.get("drifted")) or run.status != "ok"
        items = f"{m.get('drifted', 0):g} of {m.get('checked', 0):g}"
        when, first = f"{run.started_at:%Y-%m-%d %H:%M}", run.output.split("\n", 1)[0]
        rows.append([task, target, when, run.status or "unknown", items, first])
    verdict = (
        f"{drifted} of {len(rows)} drift checks found drift or failed"
        if rows
        else "no drift run: not checked"
    )
    return Section("Configuration drift", [
        Text("The latest run of each drift task on each target before the period's end."),
        Table(["task", "target", "run", "status", "drifted items", "output"], rows, "No drift run recorded."),
    ]), verdict  # fmt: skip


def _compliance(session: Session, kpis: Report) -> tuple[Section, str]:
    verdicts = evaluate(session, stored_checks(session, until=kpis.end), kpis)
    rows = [[v.check.name, v.check.description, "pass" if v.passed else "FAIL", v.how] for v in verdicts]
    failed = sum(not v.passed for v in verdicts)
    verdict = f"{failed} of {len(verdicts)} checks failed" if verdicts else "no compliance checks in the plan"
    return Section("Compliance", [
        Table(["check", "description", "result", "how"], rows, "The plan has no compliance: section."),
    ]), verdict  # fmt: skip


def _performance(session: Session, period: Period) -> tuple[Section, str]:
    base_p = period.previous()
    now, base = (
        metric_means(session, period.start, period.end),
        metric_means(session, base_p.start, base_p.end),
    )
    rows, flagged, durations = [], 0, []
    for key in sorted(now.keys() & base.keys()):
        b, n = base[key], now[key]
        change = 100 * (n - b) / abs(b) if b else None
        flag = change is not None and abs(change) >= MOVED
        flagged += flag
        rows.append([key[0], key[1], f"{b:g}", f"{n:g}", "-" if change is None else f"{change:+.1f} %",
                     "moved" if flag else ""])  # fmt: skip
        if key[1] == "duration_ms":
            durations.append((key[0], b, n))
    chart = charts.bars(
        f"Mean run time per task (ms): {base_p.label} baseline and {period.label}",
        [t for t, _, _ in durations],
        [charts.Series(base_p.label, [b for _, b, _ in durations]),
         charts.Series(period.label, [n for _, _, n in durations])], " ms",
    )  # fmt: skip
    verdict = f"{flagged} of {len(rows)} figures moved {MOVED:g} % or more from the baseline"
    return Section("Performance baseline comparison", [
        Text(f"The baseline is {base_p.label}, the month before: the mean of each task's run time "
             f"(duration_ms) and of every numeric metric its runs recorded, in each month; figures "
             f"moving {MOVED:g} % or more are flagged."),
        Chart("performance-baseline", chart),
        Table(["task", "metric", f"baseline {base_p.label}", period.label, "change", ""], rows,
              "No task ran in both months."),
    ]), verdict  # fmt: skip


def _capacity(capacity: CapacityReport | None) -> tuple[Section, str]:
    if capacity is None:
        return Section("Capacity planning review", [Text("No capacity review.")]), "not reviewed"
    recs = [f"{r.urgency}: {r.text}" for r in capacity.recommendations]
    rows = [capacity_row(f) for f in capacity.forecasts]
    return Section("Capacity planning review", [
        Text("From the capacity review (docs/capacity.md) at the period's end."),
        Bullets(recs or ["No series reaches its limit within 12 months."]),
        Table(list(CAPACITY_COLUMNS), rows, "No capacity series recorded."),
    ]), f"{len(recs)} recommendations over {len(rows)} series"  # fmt: skip


def _costs(session: Session, period: Period) -> tuple[Section, str]:
    costs = stored_costs(session, until=period.end)
    roi = measure(session, period.start, period.end, costs)
    shown = "none" if roi.roi is None else f"{roi.roi:g} %"
    return Section("Cost optimisation", [
        Text(f"The plan's cost model (costs:) in {costs.currency}, with what was measured in the period; "
             "assumptions are labelled."),
        Bullets(roi.lines()),
    ]), f"maintenance cost {roi.maintenance_cost:.2f} {costs.currency}, ROI {shown}"  # fmt: skip


def _documentation(docs: list[DocStatus]) -> tuple[Section, str]:
    stale = [d for d in docs if d.stale]
    rows = [[d.name, d.kind, d.owner, f"{d.stale_since:%Y-%m-%d}" if d.stale_since else "",
             d.stale_cause or "", f"{d.last_reviewed:%Y-%m-%d}" if d.last_reviewed else "never"]
            for d in stale]  # fmt: skip
    return Section("Documentation accuracy", [
        Text(f"{len(stale)} of {len(docs)} registered documents stale at the period's end "
             "(docs/lifecycle.md)."),
        Table(["document", "kind", "owner", "stale since", "why", "last reviewed"], rows,
              "No stale document."),
    ]), f"{len(stale)} of {len(docs)} documents stale"  # fmt: skip
