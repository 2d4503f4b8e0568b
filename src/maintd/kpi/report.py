"""One KPI report over a period, every group in a fixed order."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from maintd.kpi.availability import availability_figures
from maintd.kpi.changes import change_figures
from maintd.kpi.delivery import delivery_figures
from maintd.kpi.incidents import incident_figures
from maintd.kpi.maintenance import maintenance_figures
from maintd.kpi.model import Report
from maintd.kpi.remediation import remediation_figures
from maintd.kpi.reviews import review_figures
from maintd.kpi.roi import roi_figures
from maintd.kpi.trends import trend_figures
from maintd.slo.figures import slo_figures  # SLO error budgets and burn rates (maintd.slo)

MAX_PERIOD = timedelta(days=366 * 3)
GROUPS = ("seed", "availability", "incidents", "performance", "maintenance", "security", "delivery")


def compute(session: Session, *, end: datetime, period: timedelta, now: datetime) -> Report:
    """The KPIs for ``[end - period, end)``; ``now`` stamps the report."""
    if period <= timedelta(0) or period > MAX_PERIOD:
        raise ValueError(f"period must be positive and at most {MAX_PERIOD.days} days, not {period}")
    start = end - period
    figures = [
        *maintenance_figures(session, start, end),
        *delivery_figures(session, start, end),
        *incident_figures(session, start, end),
        *availability_figures(session, start, end),
        *change_figures(session, start, end),  # patch deployment success (maintd.changes)
        *remediation_figures(session, start, end),  # auto-remediation success (maintd.remediation)
        *review_figures(session, start, end),  # review findings on time, reviews in time (maintd.reviews)
        *roi_figures(session, start, end),  # maintenance ROI from the plan's cost model (maintd.kpi.roi)
        *slo_figures(session, end),  # each SLO over its own window ending at ``end`` (maintd.slo)
        *trend_figures(session, start, end),  # against the period before; by incident type; findings
    ]
    figures.sort(key=lambda f: GROUPS.index(f.group))
    return Report(start=start, end=end, computed_at=now, figures=figures)
