"""Calendar periods of a review's cadence (UTC): 2026-11, 2026-Q4, 2026-H2, 2026."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

from maintd.plan.reviews import ReviewCadence

MONTHS = {
    ReviewCadence.monthly: 1,
    ReviewCadence.quarterly: 3,
    ReviewCadence.biannual: 6,
    ReviewCadence.annual: 12,
}
_KEY = re.compile(r"^(\d{4})(?:-(\d{2})|-Q([1-4])|-H([12]))?$")


@dataclass(frozen=True)
class ReviewPeriod:
    key: str
    start: datetime  # the first instant of the period, UTC
    end: datetime  # the first instant of the next one: a review completes before it


def _month_start(index: int) -> datetime:
    year, month = divmod(index, 12)
    return datetime(year, month + 1, 1, tzinfo=UTC)


def _key(cadence: ReviewCadence, year: int, first_month: int) -> str:
    if cadence is ReviewCadence.monthly:
        return f"{year}-{first_month:02d}"
    if cadence is ReviewCadence.quarterly:
        return f"{year}-Q{(first_month - 1) // 3 + 1}"
    if cadence is ReviewCadence.biannual:
        return f"{year}-H{(first_month - 1) // 6 + 1}"
    return str(year)


def _period(cadence: ReviewCadence, index: int) -> ReviewPeriod:
    """The period starting at month ``index`` (year * 12 + month - 1), which must be its first."""
    start = _month_start(index)
    return ReviewPeriod(_key(cadence, start.year, start.month), start, _month_start(index + MONTHS[cadence]))


def period_of(cadence: ReviewCadence, at: datetime) -> ReviewPeriod:
    """The period ``at`` falls in."""
    at = at.astimezone(UTC)
    index = at.year * 12 + at.month - 1
    return _period(cadence, index - index % MONTHS[cadence])


def following(cadence: ReviewCadence, period: ReviewPeriod) -> ReviewPeriod:
    return period_of(cadence, period.end)


def parse(cadence: ReviewCadence, key: str) -> ReviewPeriod:
    """``2026-Q4`` for a quarterly review; ValueError naming the expected form otherwise."""
    forms = {
        ReviewCadence.monthly: "YYYY-MM, e.g. 2026-11",
        ReviewCadence.quarterly: "YYYY-QN, e.g. 2026-Q4",
        ReviewCadence.biannual: "YYYY-HN, e.g. 2026-H2",
        ReviewCadence.annual: "YYYY, e.g. 2026",
    }
    found = _KEY.match(key.strip())
    month = None
    if found:
        _, mm, q, h = found.groups()
        if cadence is ReviewCadence.monthly and mm and 1 <= int(mm) <= 12:
            month = int(mm)
        elif cadence is ReviewCadence.quarterly and q:
            month = (int(q) - 1) * 3 + 1
        elif cadence is ReviewCadence.biannual and h:
            month = (int(h) - 1) * 6 + 1
        elif cadence is ReviewCadence.annual and not (mm or q or h):
            month = 1
    if found is None or month is None:
        raise ValueError(f"{key!r} is not a {cadence.value} period: write {forms[cadence]}")
    return _period(cadence, int(found.group(1)) * 12 + month - 1)
