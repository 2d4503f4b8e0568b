"""The monthly audit's compliance checks (the plan's ``compliance:`` list, maintd.plan.costs):
a task whose latest real run on each target, up to the period's end, must be ok; or a KPI of the
audited period that must lie within ``min``/``max``."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from pydantic import TypeAdapter, ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from maintd.kpi.model import Report
from maintd.plan.costs import ComplianceCheck
from maintd.reports.figures import number
from maintd.store.models import PlanVersionRow, RunRow

_CHECKS = TypeAdapter(list[ComplianceCheck])


@dataclass(frozen=True)
class Verdict:
    check: ComplianceCheck
    passed: bool
    how: str


def stored_checks(session: Session, *, until: datetime) -> list[ComplianceCheck]:
    """The ``compliance`` section of the plan active at ``until``; empty when none or unreadable."""
    stmt = select(PlanVersionRow.document["compliance"]).where(PlanVersionRow.loaded_at <= until)
    section = session.execute(stmt.order_by(PlanVersionRow.id.desc()).limit(1)).scalar()
    try:
        return _CHECKS.validate_python(section or [])
    except ValidationError:  # a plan stored by an older maintd
        return []


def _task(session: Session, check: ComplianceCheck, until: datetime) -> Verdict:
    latest: dict[str, tuple[datetime, str]] = {}
    rows = session.execute(
        select(RunRow.target, RunRow.started_at, RunRow.status)
        .where(RunRow.task == check.task, RunRow.state == "finished", RunRow.dry_run.is_(False),
               RunRow.started_at < until)
        .order_by(RunRow.started_at)
    )  # fmt: skip
    for target, at, status in rows:
        latest[target] = (at, status or "unknown")
    if not latest:
        return Verdict(check, False, f"task {check.task} has no run before {until:%Y-%m-%d}: not verified")
    bad = {t: s for t, (_, s) in latest.items() if s != "ok"}
    shown = ", ".join(f"{t} {s} at {a:%Y-%m-%d %H:%M}" for t, (a, s) in sorted(latest.items()))
    return Verdict(check, not bad, f"latest run of task {check.task} per target: {shown}")


def _kpi(check: ComplianceCheck, kpis: Report) -> Verdict:
    try:
        f = kpis.get(check.kpi or "")
    except KeyError:
        return Verdict(check, False, f"no KPI {check.kpi} in the period: not verified")
    bounds = " and ".join(
        b for b in (f"at least {check.min:g}" if check.min is not None else "",
                    f"at most {check.max:g}" if check.max is not None else "") if b
    )  # fmt: skip
    if f.value is None:
        return Verdict(check, False, f"{check.kpi} has no value in the period ({f.how}): not verified")
    ok = (check.min is None or f.value >= check.min) and (check.max is None or f.value <= check.max)
    return Verdict(check, ok, f"{check.kpi} = {number(f.value, f.unit)}, must be {bounds} ({f.how})")


def evaluate(session: Session, checks: list[ComplianceCheck], kpis: Report) -> list[Verdict]:
    """Each check against the runs up to ``kpis.end`` and the KPIs of the audited period."""
    return [_task(session, c, kpis.end) if c.task is not None else _kpi(c, kpis) for c in checks]
