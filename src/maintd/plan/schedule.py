"""When a task is due: cron with a time zone, a fixed interval, or the seed's
cadences (daily, weekly, monthly, quarterly) anchored on a window."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Self
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter
from pydantic import field_validator, model_validator

from maintd.plan.base import StrictModel
from maintd.plan.types import Duration
from maintd.plan.windows import Span, Window, parse_window

QUARTER_MONTHS = (1, 4, 7, 10)
# Windows that allow a cron or interval schedule must let one due time fall inside
# within this many candidates, or the combination can never run.
_MAX_CANDIDATES = 1_000


class Cadence(StrEnum):
    daily = "daily"
    weekly = "weekly"
    monthly = "monthly"
    quarterly = "quarterly"


class Misfire(StrEnum):
    run_once = "run_once"
    skip = "skip"


_WINDOW_KIND_FOR = {
    Cadence.daily: "daily",
    Cadence.weekly: "weekly",
    Cadence.monthly: "monthly",
    Cadence.quarterly: "monthly",
}
_WINDOW_EXAMPLE = {
    "daily": "'02:00-03:00 UTC'",
    "weekly": "'Sunday 03:00-05:00 UTC'",
    "monthly": "'first Sunday 05:00-08:00 UTC' or 'day 1 05:00-08:00 UTC'",
}


@dataclass(frozen=True)
class Due:
    """One due time, and the end of the window occurrence it belongs to (if windowed)."""

    at: datetime
    window_end: datetime | None = None


class Schedule(StrictModel):
    """Exactly one of ``cron``, ``every`` or ``cadence``; ``window`` bounds when runs may happen."""

    cron: str | None = None
    every: Duration | None = None
    cadence: Cadence | None = None
    timezone: str = "UTC"
    window: str | None = None
    misfire: Misfire = Misfire.run_once
    misfire_grace: Duration = timedelta(minutes=1)

    @field_validator("cron")
    @classmethod
    def _cron_is_valid(cls, value: str | None) -> str | None:
        if value is not None and not _is_cron(value):
            raise ValueError(
                f"{value!r} is not a cron expression (minute hour day-of-month month day-of-week)"
            )
        return value

    @field_validator("timezone")
    @classmethod
    def _timezone_exists(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r} (use an IANA name like 'Europe/Berlin')") from None
        return value

    @field_validator("window")
    @classmethod
    def _window_parses(cls, value: str | None) -> str | None:
        if value is not None:
            parse_window(value)
        return value

    @field_validator("every")
    @classmethod
    def _every_positive(cls, value: timedelta | None) -> timedelta | None:
        if value is not None and value.total_seconds() < 1:
            raise ValueError("'every' must be at least 1s")
        return value

    @model_validator(mode="after")
    def _one_kind(self) -> Self:
        given = [name for name in ("cron", "every", "cadence") if getattr(self, name) is not None]
        if len(given) != 1:
            raise ValueError(
                "a schedule needs exactly one of 'cron', 'every' or 'cadence'"
                + (f" (got {' and '.join(given)})" if given else "")
            )
        if self.cadence is not None:
            wanted = _WINDOW_KIND_FOR[self.cadence]
            if self.window is None:
                raise ValueError(
                    f"a {self.cadence} cadence needs a window, for example window: {_WINDOW_EXAMPLE[wanted]}"
                )
            if parse_window(self.window).kind != wanted:
                raise ValueError(
                    f"a {self.cadence} cadence needs a {wanted} window like {_WINDOW_EXAMPLE[wanted]}, "
                    f"not {self.window!r}"
                )
        return self

    def timing(self) -> Timing:
        return Timing(self)


class Timing:
    """A compiled schedule: answers "when next?" in UTC."""

    def __init__(self, schedule: Schedule) -> None:
        self.schedule = schedule
        window = parse_window(schedule.window) if schedule.window else None
        if window is not None and schedule.cadence is Cadence.quarterly:
            window = window.in_months(QUARTER_MONTHS)
        self.window: Window | None = window
        self._tz = ZoneInfo(schedule.timezone)

    def window_at(self, when: datetime) -> Span | None:
        return self.window.occurrence_at(when) if self.window else None

    def in_window(self, when: datetime) -> bool:
        return self.window is None or self.window.occurrence_at(when) is not None

    def first_due(self, now: datetime) -> Due:
        """The first due time for a task that has never been scheduled.

        Interval schedules start at once; a cadence whose window is open now is due
        at once; cron waits for its next match (``now`` itself included).
        """
        if self.schedule.cron is not None:
            return self.next_due(now - timedelta(microseconds=1))
        span = self.window.occurrence_at(now) if self.window else None
        if span is not None:
            return Due(now, span.end)
        if self.schedule.every is not None and self.window is None:
            return Due(now)
        return self.next_due(now)

    def next_due(self, after: datetime) -> Due:
        """The first due time strictly after ``after``."""
        if self.schedule.cadence is not None:
            assert self.window is not None
            opening = self.window.next_start(after)
            return Due(opening.start, opening.end)
        candidate = self._next_candidate(after)
        if self.window is None:
            return Due(candidate)
        for _ in range(_MAX_CANDIDATES):
            span = self.window.occurrence_at(candidate)
            if span is not None:
                return Due(candidate, span.end)
            opening = self.window.next_start(candidate)
            if self.schedule.every is not None:
                return Due(opening.start, opening.end)
            candidate = self._next_candidate(opening.start - timedelta(microseconds=1))
        raise ValueError(f"cron {self.schedule.cron!r} never falls inside window {self.schedule.window!r}")

    def _next_candidate(self, after: datetime) -> datetime:
        if self.schedule.every is not None:
            return after + self.schedule.every
        assert self.schedule.cron is not None
        matches = croniter(self.schedule.cron, after.astimezone(self._tz))
        nxt: datetime = matches.get_next(datetime)
        # When the clocks go back an hour repeats. Like cron, a job at fixed hours runs in the
        # first pass only (a daily 02:30 runs once); a job at every hour runs in both.
        while matches.expanded[1] != ["*"] and _repeated(nxt.astimezone(self._tz)):
            nxt = matches.get_next(datetime)
        return nxt.astimezone(after.tzinfo)


@functools.lru_cache(maxsize=1024)
def _is_cron(expression: str) -> bool:
    """croniter.is_valid, once per expression: ~0.1 ms a call, and a plan's tasks share a few."""
    return bool(croniter.is_valid(expression))


def _repeated(local: datetime) -> bool:
    """A wall time in the second pass of an hour that happened twice."""
    return local.fold == 1 and local.utcoffset() != local.replace(fold=0).utcoffset()
