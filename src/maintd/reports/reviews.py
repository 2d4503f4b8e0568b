"""The recurring reviews (maintd.reviews) as they stood at an instant: reviews still open with their
progress, and findings past their due day and not done. The monthly audit and the quarterly KPI
report show it, so an open architecture review and its overdue findings are not forgotten."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from maintd.reports.model import Section, Table, Text
from maintd.store.models import ReviewFindingRow, ReviewItemRow, ReviewRow

TITLE = "Architecture and other reviews"


def reviews_section(session: Session, at: datetime) -> tuple[Section, str]:
    """What was open at ``at`` (read back from the recorded instants, so a past period's report
    says what was open then), and a one-line verdict for a summary."""
    open_rows = list(
        session.scalars(
            select(ReviewRow)
            .where(
                ReviewRow.opened_at < at, or_(ReviewRow.completed_at.is_(None), ReviewRow.completed_at >= at)
            )
            .order_by(ReviewRow.period_end, ReviewRow.name)
        )
    )
    reviewed: dict[int, int] = {r.id: 0 for r in open_rows}
    areas: dict[int, int] = {r.id: 0 for r in open_rows}
    for item in session.scalars(select(ReviewItemRow).where(ReviewItemRow.review_id.in_(list(reviewed)))):
        areas[item.review_id] += 1
        reviewed[item.review_id] += item.reviewed_at is not None and item.reviewed_at < at
    overdue = list(
        session.scalars(
            select(ReviewFindingRow)
            .where(
                ReviewFindingRow.created_at < at,
                ReviewFindingRow.due_on < at.date(),  # its due day ended by ``at``
                ReviewFindingRow.status != "cancelled",
                or_(ReviewFindingRow.completed_at.is_(None), ReviewFindingRow.completed_at >= at),
            )
            .order_by(ReviewFindingRow.due_on, ReviewFindingRow.id)
        )
    )
    late = [r for r in open_rows if r.period_end <= at]
    review_rows = [
        [str(r.id), r.title, r.period, r.owner, f"{reviewed[r.id]}/{areas[r.id]}",
         f"{r.period_end:%Y-%m-%d}" + (" (passed)" if r.period_end <= at else "")]
        for r in open_rows
    ]  # fmt: skip
    finding_rows = [
        [str(f.id), str(f.review_id), f.area, f.owner, f.due_on.isoformat(), f.title] for f in overdue
    ]
    verdict = (
        f"{len(open_rows)} review{'s' if len(open_rows) != 1 else ''} open"
        + (f" ({len(late)} past its period)" if late else "")
        + f", {len(overdue)} finding{'s' if len(overdue) != 1 else ''} overdue"
    )
    return Section(TITLE, [
        Text(f"At {at:%Y-%m-%d %H:%M} UTC: reviews not complete (areas reviewed of the checklist; due by "
             "the end of their period), and findings past their due day and not done (docs/reviews.md)."),
        Table(["review", "title", "period", "owner", "areas reviewed", "due"], review_rows,
              "No review open."),
        Table(["finding", "review", "area", "owner", "due", "title"], finding_rows, "No finding overdue."),
    ]), verdict  # fmt: skip
