"""Calendar steps: a month is the same day next month (the 31st becomes the month's last day)."""

from __future__ import annotations

import calendar
from datetime import UTC, date, datetime, time, timedelta

from maintd.plan.lifecycle import Cadence

MONTHS = {Cadence.monthly: 1, Cadence.quarterly: 3, Cadence.biannual: 6, Cadence.annual: 12}


def add_months(day: date, months: int) -> date:
    index = day.year * 12 + day.month - 1 + months
    year, month = divmod(index, 12)
    return day.replace(year=year, month=month + 1, day=min(day.day, calendar.monthrange(year, month + 1)[1]))


def add_months_at(when: datetime, months: int) -> datetime:
    return datetime.combine(add_months(when.date(), months), when.timetz())


def after(when: datetime, cadence: Cadence) -> datetime:
    """When something done at ``when`` is due again."""
    if cadence == Cadence.weekly:
        return when + timedelta(weeks=1)
    return add_months_at(when, MONTHS[cadence])


def midnight(day: date) -> datetime:
    """The start of ``day``, UTC."""
    return datetime.combine(day, time(0), tzinfo=UTC)
