"""What the reviews room reads from the active plan in the store: its reviews and its people."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from maintd.plan.models import Plan
from maintd.plan.postmortems import PostmortemSettings
from maintd.plan.reviews import Review
from maintd.postmortems.planned import stored_people
from maintd.store.models import PlanVersionRow

__all__ = ["reviews_and_people", "settings_of", "stored_people", "stored_reviews"]


def stored_reviews(session: Session) -> list[Review]:
    """The active plan's reviews (none when no plan was loaded)."""
    # Only the section: the stored plan can be megabytes (every target and task).
    stmt = select(PlanVersionRow.document["reviews"]).order_by(PlanVersionRow.id.desc()).limit(1)
    return [Review.model_validate(r) for r in session.scalar(stmt) or []]


def reviews_and_people(plan: Plan | None, session: Session) -> tuple[list[Review], set[str]]:
    """The reviews and people of the running plan, else of the stored plan."""
    if plan is not None:
        return plan.reviews, {p.name for p in plan.people}
    return stored_reviews(session), set(stored_people(session))


def settings_of(reviews: list[Review], name: str) -> PostmortemSettings:
    """The finding reminders' settings of the review ``name``; the defaults once gone from the plan."""
    for review in reviews:
        if review.name == name:
            return review.findings
    return PostmortemSettings()
