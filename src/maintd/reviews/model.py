"""What a review, its checklist and its findings are: states, errors, and how they look outside."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum

from pydantic import BaseModel, Field

from maintd.postmortems.model import ActionStatus as FindingStatus  # the same open → done | cancelled
from maintd.store.models import ReviewFindingRow, ReviewItemRow, ReviewRow

__all__ = ["FindingStatus", "ItemStatus", "ReviewState"]


class ReviewState(StrEnum):
    open = "open"
    complete = "complete"  # final: every area reviewed, signed off by a team lead or the owner


class ItemStatus(StrEnum):
    pending = "pending"
    reviewed = "reviewed"


class ReviewError(Exception):
    """A request the review's state or rules do not allow; the message says why."""


class ReviewNotFound(ReviewError, LookupError):
    """No such review, area or finding."""


class ItemView(BaseModel):
    area: str
    title: str
    status: ItemStatus
    notes: str
    reviewed_at: datetime | None
    reviewed_by: str | None


class FindingView(BaseModel):
    id: int
    review_id: int
    area: str
    title: str
    detail: str
    owner: str
    due_on: date = Field(description="due by the end of this day (UTC)")
    status: FindingStatus
    created_at: datetime
    created_by: str
    completed_at: datetime | None
    on_time: bool | None


class ReviewBrief(BaseModel):
    id: int
    name: str
    period: str
    title: str
    owner: str
    state: ReviewState
    period_start: datetime
    period_end: datetime = Field(description="due: complete before this instant")
    opened_at: datetime
    completed_at: datetime | None
    reviewed: int = Field(description="areas reviewed")
    areas: int = Field(description="areas on the checklist")
    open_findings: int


class ReviewView(ReviewBrief):
    opened_by: str
    completed_by: str | None
    items: list[ItemView]
    findings: list[FindingView]


def item_view(row: ReviewItemRow) -> ItemView:
    return ItemView.model_validate(row, from_attributes=True)


def finding_view(row: ReviewFindingRow) -> FindingView:
    return FindingView.model_validate(row, from_attributes=True)


def brief(row: ReviewRow, items: list[ReviewItemRow], open_findings: int) -> ReviewBrief:
    reviewed = sum(i.status == ItemStatus.reviewed.value for i in items)
    return ReviewBrief.model_validate(
        {
            **{k: getattr(row, k) for k in ReviewBrief.model_fields if hasattr(row, k)},
            "reviewed": reviewed,
            "areas": len(items),
            "open_findings": open_findings,
        }
    )


def review_view(row: ReviewRow, items: list[ReviewItemRow], findings: list[ReviewFindingRow]) -> ReviewView:
    opened = sum(f.status == FindingStatus.open.value for f in findings)
    return ReviewView(
        **brief(row, items, opened).model_dump(),
        opened_by=row.opened_by,
        completed_by=row.completed_by,
        items=[item_view(i) for i in items],
        findings=[finding_view(f) for f in findings],
    )
