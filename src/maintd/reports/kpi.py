"""The quarterly KPI report: every KPI for the period beside the period before, trend arrows,
targets met or not, incidents per week by priority and MTTA/MTTR per month."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from maintd import charts
from maintd.kpi.report import compute
from maintd.reports.figures import side_by_side
from maintd.reports.measure import incidents_per_week, response_per_month, weeks
from maintd.reports.model import Bullets, Chart, Document, Section, Table, Text
from maintd.reports.period import Period
from maintd.reports.reviews import reviews_section  # maintd.reviews

COLUMNS = ["group", "KPI", "this period", "previous", "trend", "target", "met", "how"]


def build(session: Session, period: Period, now: datetime) -> Document:
    this = compute(session, end=period.end, period=period.end - period.start, now=now)
    before_p = period.previous()
    before = compute(session, end=before_p.end, period=before_p.end - before_p.start, now=now)
    doc = Document("kpi", f"KPI report {period.label}", period.start, period.end, now)
    judged = [f for f in this.figures if f.met is not None]
    missed = [f for f in judged if f.met is False]
    doc.sections.append(Section("Targets", [
        Text(f"{len(judged) - len(missed)} of {len(judged)} KPIs with a target met; compared with "
             f"{before_p.label}."),
        Bullets([f"NOT met: {f.title}: {f.how}" for f in missed] or ["Every KPI with a target met it."]),
    ]))  # fmt: skip
    doc.sections.append(Section("KPIs", [Table(COLUMNS, side_by_side(this, before))]))
    starts = weeks(period.start, period.end)
    per_week = incidents_per_week(session, period.start, period.end)
    series = [charts.Series(p, [float(v) for v in counts]) for p, counts in per_week.items()]
    labels = [f"{w:%m-%d}" for w in starts]
    doc.sections.append(Section("Incidents per week by priority", [
        Chart("incidents-per-week", charts.bars("Incidents opened per week, by priority", labels, series)),
        Table(["week from", *per_week], [[lbl, *(str(c[i]) for c in per_week.values())]
                                         for i, lbl in enumerate(f"{w:%Y-%m-%d}" for w in starts)]),
    ]))  # fmt: skip
    monthly = response_per_month(session, period.start, period.end)
    months = [r.label for r in monthly]
    doc.sections.append(Section("MTTA and MTTR per month", [
        Chart("mtta-mttr", charts.lines("Mean minutes to acknowledge and to resolve, per month", months, [
            charts.Series("MTTA", [r.mtta_min for r in monthly]),
            charts.Series("MTTR", [r.mttr_min for r in monthly]),
        ], " min")),
        Table(["month", "incidents", "MTTA (min)", "MTTR (min)"],
              [[r.label, str(r.incidents), _m(r.mtta_min), _m(r.mttr_min)] for r in monthly]),
        Text("Means over every priority, of the incidents opened in the month; by priority in the KPIs "
             "table (incidents.mtta.P0 ...)."),
    ]))  # fmt: skip
    reviews, verdict = reviews_section(session, period.end)  # open reviews, overdue findings
    doc.sections[0].blocks.append(Bullets([f"Reviews at the period's end: {verdict}."]))
    doc.sections.append(reviews)
    return doc


def _m(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"
