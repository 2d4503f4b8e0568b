"""A report's period: a calendar month (``2026-10``) or quarter (``2026-Q3``) in UTC, and the one
before it; ``previous`` (the default) is the last complete one before now."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

Unit = Literal["month", "quarter"]


@dataclass(frozen=True)
class Period:
    start: datetime
    end: datetime  # excluded
    label: str

    def previous(self) -> Period:
        months = 3 if "Q" in self.label else 1
        return _period(*_back(self.start.year, self.start.month, months), months)


def _back(year: int, month: int, months: int) -> tuple[int, int]:
    index = year * 12 + (month - 1) - months
    return index // 12, index % 12 + 1


def _period(year: int, month: int, months: int) -> Period:
    end_year, end_month = _back(year, month, -months)
    start = datetime(year, month, 1, tzinfo=UTC)
    label = f"{year}-Q{(month - 1) // 3 + 1}" if months == 3 else f"{year}-{month:02d}"
    return Period(start, datetime(end_year, end_month, 1, tzinfo=UTC), label)


def parse(spec: str, unit: Unit, now: datetime) -> Period:
    """``previous``, ``current``, ``YYYY-MM`` (a month) or ``YYYY-Qn`` (a quarter); ValueError else."""
    months = 3 if unit == "quarter" else 1
    now = now.astimezone(UTC)
    first = now.month - (now.month - 1) % months
    if spec in ("previous", "current"):
        this = _period(now.year, first, months)
        return this.previous() if spec == "previous" else this
    if m := re.fullmatch(r"(\d{4})-(\d{2})", spec):
        year, month = int(m[1]), int(m[2])
        if not 1 <= month <= 12:
            raise ValueError(f"{spec!r}: no month {month}")
        return _period(year, month, 1)
    if m := re.fullmatch(r"(\d{4})-[Qq]([1-4])", spec):
        return _period(int(m[1]), (int(m[2]) - 1) * 3 + 1, 3)
    raise ValueError(f"{spec!r} is not previous, current, a month like 2026-10 or a quarter like 2026-Q3")
