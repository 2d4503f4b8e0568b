"""Recurring reviews as tracked checklists (the seed's quarterly architecture review): one per
review and calendar period, opened by a timer when the period starts or on demand; each area
recorded reviewed with notes; findings become action items with owners and due dates,
reminded until done; a review completes only when every area is reviewed."""

from __future__ import annotations

from maintd.reviews.model import (
    FindingStatus,
    FindingView,
    ItemStatus,
    ItemView,
    ReviewBrief,
    ReviewError,
    ReviewNotFound,
    ReviewState,
    ReviewView,
)

__all__ = [
    "FindingStatus",
    "FindingView",
    "ItemStatus",
    "ItemView",
    "ReviewBrief",
    "ReviewError",
    "ReviewNotFound",
    "ReviewState",
    "ReviewView",
]
