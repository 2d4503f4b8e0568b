"""Figures of the recurring reviews (maintd.reviews): findings' action items closed on time, and
reviews completed within their period."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from maintd.kpi.model import Figure, share
from maintd.store.models import ReviewFindingRow, ReviewRow


def review_figures(session: Session, start: datetime, end: datetime) -> list[Figure]:
    on_time, late = _findings(session, start, end)
    in_time, periods, names = _periods(session, start, end)
    return [
        Figure(
            name="reviews.findings_on_time",
            group="delivery",
            title="Review findings closed on time",
            value=share(on_time, on_time + late),
            unit="%",
            how=(
                f"{on_time} of {on_time + late} review findings due in the period were done by the end of "
                "their due day (UTC); still open after it counts as late, cancelled does not count"
            ),
            samples=on_time + late,
            target=95.0,
            better="higher",
        ),
        Figure(
            name="reviews.completed_within_cadence",
            group="delivery",
            title="Reviews completed within their period",
            value=share(in_time, periods),
            unit="%",
            how=(
                f"{in_time} of {periods} reviews whose period ended in the period ({names or 'none'}) were "
                "complete, every area reviewed, before their period ended"
            ),
            samples=periods,
            target=100.0,
            better="higher",
        ),
    ]


def _findings(session: Session, start: datetime, end: datetime) -> tuple[int, int]:
    """Findings due on a day of the period whose due day is over by its end: (done in time, late);
    late includes the ones still open, cancelled ones do not count (as post-mortem actions)."""
    rows = session.execute(
        select(ReviewFindingRow.status, ReviewFindingRow.on_time).where(
            ReviewFindingRow.due_on >= start.date(),
            ReviewFindingRow.due_on < end.date(),
            ReviewFindingRow.status != "cancelled",
        )
    ).all()
    on_time = sum(1 for status, in_time in rows if status == "done" and in_time)
    return on_time, len(rows) - on_time


def _periods(session: Session, start: datetime, end: datetime) -> tuple[int, int, str]:
    """Reviews whose period ended in ``(start, end]``: (completed before it ended, all, their names)."""
    rows = session.execute(
        select(ReviewRow.name, ReviewRow.period, ReviewRow.completed_at, ReviewRow.period_end)
        .where(ReviewRow.period_end > start, ReviewRow.period_end <= end)
        .order_by(ReviewRow.period_end, ReviewRow.name)
    ).all()
    in_time = sum(1 for _, _, done, due in rows if done is not None and done < due)
    return in_time, len(rows), ", ".join(f"{name} {period}" for name, period, _, _ in rows)
