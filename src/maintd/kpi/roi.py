"""The seed's maintenance ROI from the plan's cost model (``costs:``, maintd.plan.costs) and what
was measured in the period::

    maintenance cost = staff hours x hourly rate + tool licences + infrastructure overhead
    value delivered  = downtime prevented (min) x downtime cost/min + incidents prevented x cost/incident
    ROI %            = (value delivered - maintenance cost) / maintenance cost x 100

Measured: staff hours are the run time of the runs started by hand and of the maintenance kinds'
runs (MAINTENANCE_KINDS); the availability of each probed target; the incidents opened. Assumed
(from the plan, labelled so): the baseline availability and incident rate without maintenance,
which downtime and incidents prevented are measured against. Monthly amounts are prorated with a
month of 30 days. The seed's "performance improvements x efficiency gain" term is not measured and
counts 0.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from pydantic import ValidationError
from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from maintd.kpi.availability import availability_figures
from maintd.kpi.model import Figure
from maintd.plan.costs import CostModel
from maintd.store.models import IncidentRow, PlanVersionRow, RunRow

MONTH_DAYS = 30.0
MAINTENANCE_KINDS = (
    "backup-files", "backup-postgres", "certificates", "dr-drill", "drift", "logs", "postgres-upkeep",
    "redis-upkeep", "rotate-postgres-password", "security-scan",
)  # fmt: skip


@dataclass(frozen=True)
class Roi:
    costs: CostModel
    months: float
    staff_hours: float
    staff_runs: int
    downtime_prevented_min: float
    availability: dict[str, float]  # per probed target, measured %
    incidents: int
    incidents_prevented: float
    maintenance_cost: float
    value_delivered: float

    @property
    def roi(self) -> float | None:
        if self.maintenance_cost <= 0:
            return None
        return round((self.value_delivered - self.maintenance_cost) / self.maintenance_cost * 100, 3)

    def lines(self) -> list[str]:
        """Every figure with how it was computed; assumptions labelled."""
        c, cur = self.costs, self.costs.currency
        avail = ", ".join(f"{t} {v:g} %" for t, v in sorted(self.availability.items())) or "no probed target"
        return [
            f"period: {self.months:.3f} months of {MONTH_DAYS:g} days",
            f"staff hours: {self.staff_hours:.3f} h, the run time of {self.staff_runs} runs started by hand "
            "or of maintenance kinds (assumption: their run time is staff time)",
            f"maintenance cost: {self.staff_hours:.3f} h x {c.staff_hourly_rate:g} + licences "
            f"{c.tool_licences_per_month:g}/month x {self.months:.3f} + overhead "
            f"{c.infrastructure_overhead_per_month:g}/month x {self.months:.3f} "
            f"= {self.maintenance_cost:.2f} {cur}",
            f"downtime prevented: {self.downtime_prevented_min:.1f} min: per target, (measured "
            f"availability - baseline {c.baseline_availability:g} % (assumption)) x the period's "
            f"minutes, when above it ({avail})",
            f"incidents prevented: {self.incidents_prevented:g}: baseline {c.baseline_incidents_per_month:g}"
            f"/month (assumption) x {self.months:.3f} - {self.incidents} incidents opened, at least 0",
            f"value delivered: {self.downtime_prevented_min:.1f} min x {c.downtime_cost_per_minute:g} + "
            f"{self.incidents_prevented:g} x {c.cost_per_incident:g} = {self.value_delivered:.2f} {cur} "
            "(performance improvements not measured: 0)",
            "ROI: (value delivered - maintenance cost) / maintenance cost x 100 = "
            + (f"{self.roi:g} %" if self.roi is not None else "none (no maintenance cost in the model)"),
        ]


def stored_costs(session: Session, *, until: datetime | None = None) -> CostModel:
    """The ``costs`` section of the plan active at ``until`` (the defaults: all zero, when none)."""
    stmt = select(PlanVersionRow.document["costs"]).order_by(PlanVersionRow.id.desc())
    if until is not None:
        stmt = stmt.where(PlanVersionRow.loaded_at <= until)
    section = session.execute(stmt.limit(1)).scalar()
    try:
        return CostModel.model_validate(section or {})
    except ValidationError:  # a plan stored by an older maintd: no usable cost model
        return CostModel()


def measure(session: Session, start: datetime, end: datetime, costs: CostModel) -> Roi:
    months = (end - start).total_seconds() / 86400 / MONTH_DAYS
    staff_ms, staff_runs = session.execute(
        select(func.coalesce(func.sum(RunRow.duration_ms), 0.0), func.count()).where(
            RunRow.started_at >= start, RunRow.started_at < end, RunRow.state == "finished",
            RunRow.dry_run.is_(False), or_(RunRow.trigger == "manual", RunRow.kind.in_(MAINTENANCE_KINDS)),
        )
    ).one()  # fmt: skip
    staff_hours = float(staff_ms or 0) / 3_600_000
    availability = {
        f.name.removeprefix("availability."): f.value
        for f in availability_figures(session, start, end)
        if f.value is not None
    }
    minutes = (end - start).total_seconds() / 60
    downtime = sum(max(0.0, (v - costs.baseline_availability) / 100) * minutes for v in availability.values())
    opened = (IncidentRow.opened_at >= start, IncidentRow.opened_at < end)
    incidents = session.scalar(select(func.count()).select_from(IncidentRow).where(*opened)) or 0
    prevented = max(0.0, round(costs.baseline_incidents_per_month * months - incidents, 3))
    cost = (
        staff_hours * costs.staff_hourly_rate
        + (costs.tool_licences_per_month + costs.infrastructure_overhead_per_month) * months
    )
    value = downtime * costs.downtime_cost_per_minute + prevented * costs.cost_per_incident
    return Roi(costs, months, staff_hours, int(staff_runs), downtime, availability, int(incidents), prevented,
               round(cost, 2), round(value, 2))  # fmt: skip


def roi_figures(session: Session, start: datetime, end: datetime) -> list[Figure]:
    roi = measure(session, start, end, stored_costs(session, until=end))
    return [
        Figure(
            name="seed.maintenance_roi",
            group="seed",
            title="Maintenance ROI",
            value=roi.roi,
            unit="%",
            how="; ".join(roi.lines()[1:]),
            samples=roi.staff_runs + roi.incidents + len(roi.availability),
        )
    ]
