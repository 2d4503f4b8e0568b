"""Findings: what a review found, each an action item with an owner and a due date, reminded on
timers until done; done on time or late.

Completing one appends ``review.finding.completed`` with ``on_time`` (done before the end of its
due day, UTC), which the KPI "review findings closed on time" reads back from the table.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import date, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from maintd.plan.postmortems import PostmortemSettings
from maintd.postmortems.items import Items
from maintd.reviews import reminders
from maintd.reviews.model import FindingStatus, ReviewError, ReviewNotFound
from maintd.reviews.service import area_of, subject, writable
from maintd.store.models import ReviewFindingRow

TITLE_MAX, DETAIL_MAX = 500, 20000


ITEMS = Items(
    chain=reminders.FINDINGS,
    noun="finding",
    a_title="a finding",
    events="review.finding",
    error=ReviewError,
    subject=lambda row: subject(row.review_id),
    title_max=TITLE_MAX,
)


def get_finding(session: Session, *, finding_id: int, for_update: bool = False) -> ReviewFindingRow:
    row = session.get(ReviewFindingRow, finding_id, with_for_update=for_update, populate_existing=for_update)
    if row is None:
        raise ReviewNotFound(f"no review finding {finding_id}")
    return row


def add_finding(
    session: Session,
    *,
    review_id: int,
    area: str,
    title: str,
    owner: str,
    due_on: date,
    people: Collection[str],
    settings: PostmortemSettings,
    actor: str,
    now: datetime,
    detail: str = "",
) -> ReviewFindingRow:
    """A finding of an open review, in one of its areas, as an open action item with its reminders."""
    review = writable(session, review_id)
    area_of(session, review, area)
    title = ITEMS.check_new(title, owner, due_on, people, now)
    row = ReviewFindingRow(
        review_id=review_id,
        area=area,
        title=title,
        detail=detail.strip()[:DETAIL_MAX],
        owner=owner,
        due_on=due_on,
        status=FindingStatus.open.value,
        created_at=now,
        created_by=actor,
    )
    session.add(row)
    session.flush()
    return ITEMS.added(session, row, settings, actor, now)


def update_finding(
    session: Session,
    *,
    finding_id: int,
    people: Collection[str],
    settings: PostmortemSettings,
    actor: str,
    now: datetime,
    title: str | None = None,
    owner: str | None = None,
    due_on: date | None = None,
    status: FindingStatus | None = None,
) -> ReviewFindingRow:
    """Change what is given; a new due date re-sets the reminders; done and cancelled are final."""
    row = get_finding(session, finding_id=finding_id, for_update=True)
    return ITEMS.change(
        session, row, people=people, settings=settings, actor=actor, now=now,
        title=title, owner=owner, due_on=due_on, status=status,
    )  # fmt: skip


def list_findings(
    session: Session,
    *,
    status: FindingStatus | None = None,
    owner: str | None = None,
    review_id: int | None = None,
    overdue_at: datetime | None = None,
    limit: int = 100,
    offset: int = 0,
) -> list[ReviewFindingRow]:
    """By due date, earliest first; ``overdue_at``: only open ones whose due day ended by then."""
    stmt = select(ReviewFindingRow)
    if status is not None:
        stmt = stmt.where(ReviewFindingRow.status == status.value)
    if owner is not None:
        stmt = stmt.where(ReviewFindingRow.owner == owner)
    if review_id is not None:
        stmt = stmt.where(ReviewFindingRow.review_id == review_id)
    if overdue_at is not None:
        # Due day D ends at D+1 00:00 UTC: overdue at ``overdue_at`` when D < its date.
        stmt = stmt.where(
            ReviewFindingRow.status == FindingStatus.open.value, ReviewFindingRow.due_on < overdue_at.date()
        )
    stmt = stmt.order_by(ReviewFindingRow.due_on, ReviewFindingRow.id).offset(offset).limit(limit)
    return list(session.scalars(stmt))
