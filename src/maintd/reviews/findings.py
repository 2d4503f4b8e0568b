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
from maintd.postmortems.reminders import deadline
from maintd.reviews import reminders
from maintd.reviews.model import FindingStatus, ReviewError, ReviewNotFound
from maintd.reviews.service import area_of, subject, writable
from maintd.store.events import Event, append
from maintd.store.models import ReviewFindingRow

TITLE_MAX, DETAIL_MAX = 500, 20000


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
    title = _title(title)
    _check_owner(owner, people)
    _check_due(due_on, now)
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
    reminders.schedule_finding(session, row, settings=settings, now=now)
    payload = {"finding": row.id, "area": area, "title": title, "owner": owner, "due_on": due_on.isoformat()}
    append(session, Event("review.finding.added", subject(review_id), now, actor, payload))
    return row


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
    if row.status != FindingStatus.open.value:
        raise ReviewError(f"finding {finding_id} is {row.status}; it cannot change any more")
    changed: dict[str, object] = {}
    if title is not None and _title(title) != row.title:
        row.title = changed["title"] = _title(title)
    if owner is not None and owner != row.owner:
        _check_owner(owner, people)
        row.owner = changed["owner"] = owner
    if due_on is not None and due_on != row.due_on:
        _check_due(due_on, now)
        row.due_on = due_on
        changed["due_on"] = due_on.isoformat()
    if status is not None and status is not FindingStatus.open:
        return _finish(session, row, status, actor, now, changed)
    if not changed:
        raise ReviewError(f"nothing to change: finding {finding_id} is like that already")
    if "due_on" in changed:
        reminders.cancel_finding(session, row, now=now)
        reminders.schedule_finding(session, row, settings=settings, now=now)
    payload = {"finding": row.id, **changed}
    append(session, Event("review.finding.changed", subject(row.review_id), now, actor, payload))
    return row


def _finish(
    session: Session,
    row: ReviewFindingRow,
    status: FindingStatus,
    actor: str,
    now: datetime,
    changed: dict[str, object],
) -> ReviewFindingRow:
    row.status = status.value
    reminders.cancel_finding(session, row, now=now)
    payload: dict[str, object] = {"finding": row.id, "title": row.title, "owner": row.owner, **changed}
    payload["due_on"] = row.due_on.isoformat()
    if status is FindingStatus.done:
        row.completed_at = now
        row.on_time = payload["on_time"] = now < deadline(row.due_on)
        kind = "review.finding.completed"
    else:
        kind = "review.finding.cancelled"
    append(session, Event(kind, subject(row.review_id), now, actor, payload))
    return row


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


def _title(title: str) -> str:
    title = title.strip()
    if not title:
        raise ReviewError("a finding needs a title")
    if len(title) > TITLE_MAX:
        raise ReviewError(f"a finding's title is at most {TITLE_MAX} characters, not {len(title)}")
    return title


def _check_owner(owner: str, people: Collection[str]) -> None:
    if owner not in people:
        known = ", ".join(sorted(people)) or "none: the active plan has no people"
        raise ReviewError(f"{owner!r} is not a person of the active plan (people: {known})")


def _check_due(due_on: date, now: datetime) -> None:
    if due_on < now.date():
        raise ReviewError(
            f"the due date {due_on.isoformat()} has passed (today is {now.date().isoformat()}, UTC)"
        )
