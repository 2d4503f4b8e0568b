"""Reports written as files (HTML with inline SVG charts, and Markdown): the quarterly KPI report,
the monthly review and the monthly system audit (docs/reports.md). The capacity report is the
capacity room's (maintd.capacity.render).

``build(name, session, period, now)`` composes one from the store; ``render.write`` writes it.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from maintd.capacity.model import CapacityReport
from maintd.lifecycle.documents import DocStatus, statuses
from maintd.lifecycle.records import Catalog, LifecycleError
from maintd.reports import audit, kpi, review
from maintd.reports.model import Document
from maintd.reports.period import Period, Unit, parse

__all__ = ["REPORTS", "Document", "Period", "build", "period_of"]

REPORTS: dict[str, Unit] = {"kpi": "quarter", "monthly-review": "month", "monthly-audit": "month"}
CAPACITY_HISTORY = timedelta(days=365)


def period_of(name: str, spec: str, now: datetime) -> Period:
    """The period ``spec`` names for report ``name`` (ValueError for a bad one)."""
    if name not in REPORTS:
        raise ValueError(f"unknown report {name!r}: use {', '.join(REPORTS)}")
    return parse(spec, REPORTS[name], now)


def _docs(session: Session, until: datetime) -> list[DocStatus]:
    try:
        return statuses(session, Catalog.stored(session, until=until), until=until)
    except LifecycleError:  # a stored plan an older maintd wrote: no registry to judge
        return []


def _capacity(session: Session, until: datetime) -> CapacityReport:
    from maintd.capacity.review import review as capacity_review  # numpy, statsmodels: only when asked

    return capacity_review(session, now=until, history=CAPACITY_HISTORY)


def build(name: str, session: Session, period: Period, now: datetime) -> Document:
    """Report ``name`` over ``period``, from what the store recorded; ``now`` stamps it."""
    if name == "kpi":
        return kpi.build(session, period, now)
    docs, capacity = _docs(session, period.end), _capacity(session, period.end)
    if name == "monthly-review":
        return review.build(session, period, now, docs, capacity)
    if name == "monthly-audit":
        return audit.build(session, period, review.kpis(session, period, now), docs, capacity)
    raise ValueError(f"unknown report {name!r}: use {', '.join(REPORTS)}")
