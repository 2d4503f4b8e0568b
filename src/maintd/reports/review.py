"""The seed's monthly review: metrics and trends (this month beside the last), anomalies, and
improvement opportunities ranked by impact / effort."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from maintd import charts
from maintd.capacity.model import CapacityReport
from maintd.kpi.model import Report
from maintd.kpi.report import compute
from maintd.lifecycle.documents import DocStatus
from maintd.reports.figures import moved, side_by_side
from maintd.reports.measure import TaskRuns, incidents_by_type, task_runs
from maintd.reports.model import Bullets, Chart, Document, Section, Table, Text
from maintd.reports.opportunities import derive
from maintd.reports.period import Period

POINTS = 10.0  # a % KPI that moved this many points is an anomaly
RELATIVE = 0.5  # any other KPI that moved by half its earlier value
FAILURE_RISE = 10.0  # a task whose failure rate rose this many points


def kpis(session: Session, period: Period, now: datetime) -> Report:
    return compute(session, end=period.end, period=period.end - period.start, now=now)


def build(
    session: Session, period: Period, now: datetime, docs: list[DocStatus], capacity: CapacityReport | None
) -> Document:
    before_p = period.previous()
    this, before = kpis(session, period, now), kpis(session, before_p, now)
    doc = Document("monthly-review", f"Monthly review {period.label}", period.start, period.end, now)
    pct = [f for f in this.figures if f.unit == "%" and f.value is not None and f.group == "seed"]
    previous = {f.name: f for f in before.figures}
    chart = charts.bars(
        f"Seed KPIs: {before_p.label} and {period.label}", [f.title for f in pct],
        [charts.Series(before_p.label, [previous[f.name].value if f.name in previous else None for f in pct]),
         charts.Series(period.label, [f.value for f in pct])], " %",
    )  # fmt: skip
    columns = ["group", "KPI", period.label, before_p.label, "trend", "target", "met", "how"]
    doc.sections.append(Section("Metrics and trends", [
        Chart("seed-kpis", chart), Table(columns, side_by_side(this, before)),
    ]))  # fmt: skip
    tasks, tasks_before = (
        task_runs(session, period.start, period.end),
        task_runs(session, before_p.start, before_p.end),
    )
    doc.sections.append(_anomalies(session, period, this, before, tasks, tasks_before))
    found = derive(tasks, this, docs, capacity)
    doc.sections.append(Section("Opportunities ranked by impact / effort", [
        Table(["rank", "opportunity", "impact", "effort", "score", "why"],
              [[str(i), o.title, str(o.impact), str(o.effort), f"{o.score:g}", o.why]
               for i, o in enumerate(found, 1)], "No opportunity found in what was measured."),
        Text("Impact and effort are scored 1 to 5 by the rules in each row's why; score = impact / effort. "
             "Open an improvement ticket for the top rows and follow them in next month's review."),
    ]))  # fmt: skip
    return doc


def _anomalies(
    session: Session,
    period: Period,
    this: Report,
    before: Report,
    tasks: dict[str, TaskRuns],
    tasks_before: dict[str, TaskRuns],
) -> Section:
    previous = {f.name: f for f in before.figures}
    items = [f"{f.title} moved: {why}" for f in this.figures
             if (why := moved(f, previous.get(f.name), POINTS, RELATIVE))]  # fmt: skip
    for name, t in tasks.items():
        was = tasks_before[name].failure_rate if name in tasks_before else 0.0
        if t.failure_rate - was >= FAILURE_RISE:
            items.append(f"task {name}: failure rate rose from {was:g} % to {t.failure_rate:g} % "
                         f"({t.failed} of {t.runs} runs not ok)")  # fmt: skip
    by_type = incidents_by_type(session, period.start, period.end)
    p = period.previous()
    by_type_before = incidents_by_type(session, p.start, p.end)
    rows = [[kind, str(n), str(by_type_before.get(kind, 0))] for kind, n in by_type.most_common()]
    rows += [[kind, "0", str(n)] for kind, n in by_type_before.most_common() if kind not in by_type]
    items += [f"incidents of type {kind}: {by_type_before.get(kind, 0)} → {n}"
              for kind, n in by_type.items() if n >= 2 * max(by_type_before.get(kind, 0), 1)]  # fmt: skip
    note = (f"An anomaly: a % KPI that moved {POINTS:g} points or more, another KPI that moved "
            f"{RELATIVE:.0%} or more of its earlier value, a task whose failure rate rose {FAILURE_RISE:g} "
            "points or more, an incident type at least twice as frequent (and at least 2).")  # fmt: skip
    return Section("Anomalies", [
        Bullets(items or ["None found."]), Text(note),
        Table(["incident type", period.label, p.label], rows, "No incidents in either month."),
    ])  # fmt: skip
