"""What people do with reviews: open one for a period, record each area reviewed, complete it.

Keyword-only functions that take the caller's session and only flush; the request or
command owns the transaction. Every change appends one event on the review's subject
(``review:ID``), so a review's life can be read back from the event log.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from maintd.plan.reviews import Review
from maintd.reviews import reminders
from maintd.reviews.model import (
    FindingStatus,
    ItemStatus,
    ReviewBrief,
    ReviewError,
    ReviewNotFound,
    ReviewState,
    ReviewView,
    brief,
    review_view,
)
from maintd.reviews.periods import ReviewPeriod, period_of
from maintd.store.events import Event, append
from maintd.store.models import ReviewFindingRow, ReviewItemRow, ReviewRow

NOTES_MAX = 20000


def subject(review_id: int) -> str:
    return f"review:{review_id}"


def find(session: Session, *, name: str, period: str) -> ReviewRow | None:
    return session.scalar(select(ReviewRow).where(ReviewRow.name == name, ReviewRow.period == period))


def open_period(
    session: Session, review: Review, period: ReviewPeriod, *, actor: str, now: datetime
) -> ReviewRow | None:
    """Open ``review`` for ``period`` with its checklist (flushes); None when it exists already."""
    if find(session, name=review.name, period=period.key) is not None:
        return None
    row = ReviewRow(
        name=review.name,
        period=period.key,
        title=review.heading,
        owner=review.owner,
        state=ReviewState.open.value,
        period_start=period.start,
        period_end=period.end,
        opened_at=now,
        opened_by=actor,
    )
    try:
        # The unique (name, period) decides a race between the timer and someone opening it on
        # demand in another process: the loser's savepoint is undone and it reads the winner's.
        with session.begin_nested():
            session.add(row)
            session.flush()
    except IntegrityError:
        return None
    for position, area in enumerate(review.areas):
        session.add(
            ReviewItemRow(
                review_id=row.id,
                position=position,
                area=area.name,
                title=area.title or area.name,
                status=ItemStatus.pending.value,
                notes="",
            )
        )
    session.flush()
    payload = {
        "review": review.name,
        "period": period.key,
        "owner": review.owner,
        "areas": [a.name for a in review.areas],
        "due": period.end.isoformat(),
    }
    append(session, Event("review.opened", subject(row.id), now, actor, payload))
    reminders.schedule_due(session, row, now=now)  # to its owner while it stays open near its end
    return row


def start(
    session: Session,
    *,
    reviews: list[Review],
    name: str,
    actor: str,
    now: datetime,
    period: ReviewPeriod | None = None,
) -> ReviewRow:
    """Open the review ``name`` of the plan on demand, for ``period`` (the current one by default)."""
    review = plan_review(reviews, name)
    period = period or period_of(review.cadence, now)
    row = open_period(session, review, period, actor=actor, now=now)
    if row is None:
        found = find(session, name=name, period=period.key)
        assert found is not None
        raise ReviewError(f"{name} {period.key} exists already: review {found.id} ({found.state})")
    return row


def plan_review(reviews: list[Review], name: str) -> Review:
    for review in reviews:
        if review.name == name:
            return review
    known = ", ".join(r.name for r in reviews) or "none: the active plan has no reviews"
    raise ReviewNotFound(f"the active plan has no review {name!r} (reviews: {known})")


def load(session: Session, review_id: int, *, for_update: bool = False) -> ReviewRow:
    row = session.get(ReviewRow, review_id, with_for_update=for_update, populate_existing=for_update)
    if row is None:
        raise ReviewNotFound(f"no review {review_id}")
    return row


def items_of(session: Session, review_id: int) -> list[ReviewItemRow]:
    stmt = select(ReviewItemRow).where(ReviewItemRow.review_id == review_id).order_by(ReviewItemRow.position)
    return list(session.scalars(stmt))


def findings_of(session: Session, review_id: int) -> list[ReviewFindingRow]:
    stmt = select(ReviewFindingRow).where(ReviewFindingRow.review_id == review_id)
    return list(session.scalars(stmt.order_by(ReviewFindingRow.id)))


def get_review(session: Session, *, review_id: int) -> ReviewView:
    """The review with its checklist (plan order) and findings (oldest first)."""
    row = load(session, review_id)
    return review_view(row, items_of(session, review_id), findings_of(session, review_id))


def list_reviews(
    session: Session,
    *,
    state: ReviewState | None = None,
    name: str | None = None,
    limit: int = 50,
    offset: int = 0,
) -> list[ReviewBrief]:
    """Newest period first."""
    stmt = select(ReviewRow)
    if state is not None:
        stmt = stmt.where(ReviewRow.state == state.value)
    if name is not None:
        stmt = stmt.where(ReviewRow.name == name)
    stmt = stmt.order_by(ReviewRow.period_start.desc(), ReviewRow.id.desc()).offset(offset).limit(limit)
    rows = list(session.scalars(stmt))
    ids = [r.id for r in rows]
    items: dict[int, list[ReviewItemRow]] = {i: [] for i in ids}
    for item in session.scalars(select(ReviewItemRow).where(ReviewItemRow.review_id.in_(ids))):
        items[item.review_id].append(item)
    counts = dict(
        session.execute(
            select(ReviewFindingRow.review_id, func.count())
            .where(ReviewFindingRow.review_id.in_(ids), ReviewFindingRow.status == FindingStatus.open.value)
            .group_by(ReviewFindingRow.review_id)
        ).all()
    )
    return [brief(r, items[r.id], counts.get(r.id, 0)) for r in rows]


def check(
    session: Session, *, review_id: int, area: str, notes: str, actor: str, now: datetime
) -> ReviewItemRow:
    """Record an area reviewed, with what was seen; recording it again replaces the notes."""
    row = writable(session, review_id)
    notes = notes.strip()
    if not notes:
        raise ReviewError(f"say what was reviewed in {area!r}: the notes are the review's record")
    if len(notes) > NOTES_MAX:
        raise ReviewError(f"the notes are {len(notes)} characters; at most {NOTES_MAX}")
    item = area_of(session, row, area)
    again = item.status == ItemStatus.reviewed.value
    item.status, item.notes, item.reviewed_at, item.reviewed_by = ItemStatus.reviewed.value, notes, now, actor
    payload = {"review": row.name, "period": row.period, "area": area, "again": again}
    append(session, Event("review.area_reviewed", subject(row.id), now, actor, payload))
    return item


def area_of(session: Session, row: ReviewRow, area: str) -> ReviewItemRow:
    items = items_of(session, row.id)
    for item in items:
        if item.area == area:
            return item
    raise ReviewNotFound(
        f"review {row.id} ({row.name} {row.period}) has no area {area!r}; "
        f"its areas: {', '.join(i.area for i in items)}"
    )


def complete(session: Session, *, review_id: int, actor: str, now: datetime, note: str = "") -> ReviewRow:
    """Open → complete, final; refused while an area is unreviewed."""
    row = writable(session, review_id)
    pending = [i.area for i in items_of(session, review_id) if i.status != ItemStatus.reviewed.value]
    if pending:
        raise ReviewError(
            f"review {review_id} ({row.name} {row.period}) cannot complete: "
            f"{len(pending)} area{'s' if len(pending) != 1 else ''} not reviewed: {', '.join(pending)}"
        )
    row.state, row.completed_at, row.completed_by = ReviewState.complete.value, now, actor
    findings = findings_of(session, review_id)
    payload: dict[str, object] = {
        "review": row.name,
        "period": row.period,
        "on_time": now < row.period_end,
        "findings": len(findings),
        "open_findings": sum(f.status == FindingStatus.open.value for f in findings),
    }
    if note.strip():
        payload["note"] = note.strip()
    append(session, Event("review.completed", subject(row.id), now, actor, payload))
    return row


def writable(session: Session, review_id: int) -> ReviewRow:
    row = load(session, review_id, for_update=True)
    if row.state != ReviewState.open.value:
        raise ReviewError(f"review {review_id} ({row.name} {row.period}) is {row.state}; it cannot change")
    return row
