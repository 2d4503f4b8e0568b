"""What the reviews room reads from the active plan in the store: its reviews and its people."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from maintd.plan.reviews import Review
from maintd.postmortems.planned import stored_people
from maintd.store.models import PlanVersionRow

__all__ = ["stored_people", "stored_reviews"]


def stored_reviews(session: Session) -> list[Review]:
    """The active plan's reviews (none when no plan was loaded)."""
    # Only the section: the stored plan can be megabytes (every target and task).
    stmt = select(PlanVersionRow.document["reviews"]).order_by(PlanVersionRow.id.desc()).limit(1)
    return [Review.model_validate(r) for r in session.scalar(stmt) or []]
