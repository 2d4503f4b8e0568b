"""Maintenance windows: ``02:00-03:00 UTC``, ``Sunday 03:00-05:00 UTC``,
``first Sunday 05:00-08:00 UTC``, ``day 1 05:00-08:00 Europe/Berlin``.

A window is a recurring span of local wall-clock time. ``occurrence_at`` and
``next_start`` turn it into concrete UTC spans, day by day, in the window's
own time zone (so a window keeps its local hours across DST changes).
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

WEEKDAYS = {name.lower(): i for i, name in enumerate(calendar.day_name)}
WEEKDAYS.update({name.lower(): i for i, name in enumerate(calendar.day_abbr)})
WEEKDAYS.update({"tues": 1, "weds": 2, "thur": 3, "thurs": 3})
ORDINALS = {"first": 1, "second": 2, "third": 3, "fourth": 4, "last": -1}

_WINDOW = re.compile(
    r"^(?:(?P<ordinal>first|second|third|fourth|last)\s+)?"
    r"(?:(?P<weekday>[a-z]+)\s+|day\s+(?P<day>\d{1,2})\s+)?"
    r"(?P<start>\d{1,2}:\d{2})\s*-\s*(?P<end>\d{1,2}:\d{2})"
    r"(?:\s+(?P<tz>\S+))?$",
    re.IGNORECASE,
)
# How far ahead we look for the next occurrence: a "fifth Monday" never comes,
# but every form we accept recurs within a year.
_HORIZON_DAYS = 400


@dataclass(frozen=True)
class Span:
    start: datetime
    end: datetime

    def contains(self, when: datetime) -> bool:
        return self.start <= when < self.end


@dataclass(frozen=True)
class Window:
    text: str
    start: time
    end_minutes: int  # minutes after local midnight; 1440 allows "…-24:00"
    tz: ZoneInfo
    weekday: int | None = None
    ordinal: int | None = None  # 1..4 or -1 (last) of ``weekday`` in a month
    day: int | None = None  # day of month
    months: tuple[int, ...] | None = None  # restrict to these months (quarterly)

    @property
    def kind(self) -> str:
        """daily, weekly or monthly: how often the bare window recurs."""
        if self.ordinal is not None or self.day is not None:
            return "monthly"
        return "weekly" if self.weekday is not None else "daily"

    def in_months(self, months: tuple[int, ...]) -> Window:
        return Window(
            self.text, self.start, self.end_minutes, self.tz, self.weekday, self.ordinal, self.day, months
        )

    def _matches(self, day: date) -> bool:
        if self.months is not None and day.month not in self.months:
            return False
        if self.day is not None:
            return day.day == self.day
        if self.weekday is not None and day.weekday() != self.weekday:
            return False
        if self.ordinal is None:
            return True
        if self.ordinal == -1:
            return day.day + 7 > calendar.monthrange(day.year, day.month)[1]
        return (day.day - 1) // 7 + 1 == self.ordinal

    def _span_on(self, day: date) -> Span:
        local_start = datetime.combine(day, self.start, tzinfo=self.tz)
        # Aware + timedelta is wall-clock arithmetic and zoneinfo derives the offset from the
        # wall time, so a window keeps its local hours on DST days.
        local_end = datetime.combine(day, time(0), tzinfo=self.tz) + timedelta(minutes=self.end_minutes)
        return Span(local_start.astimezone(UTC), local_end.astimezone(UTC))

    def occurrence_at(self, when: datetime) -> Span | None:
        """The occurrence that contains ``when``, if any."""
        local_day = when.astimezone(self.tz).date()
        for day in (local_day, local_day - timedelta(days=1)):
            if self._matches(day):
                span = self._span_on(day)
                if span.contains(when):
                    return span
        return None

    def next_start(self, after: datetime) -> Span:
        """The first occurrence starting strictly after ``after``."""
        day = after.astimezone(self.tz).date() - timedelta(days=1)
        for _ in range(_HORIZON_DAYS):
            if self._matches(day):
                span = self._span_on(day)
                if span.start > after:
                    return span
            day += timedelta(days=1)
        raise ValueError(f"window {self.text!r} never recurs")  # unreachable for parsed windows


def parse_window(text: str) -> Window:
    """Parse the window grammar above; raise ValueError saying what is wrong."""
    match = _WINDOW.match(text.strip())
    if not match:
        raise ValueError(
            f"{text!r} is not a window: write 'HH:MM-HH:MM [TZ]', 'Sunday HH:MM-HH:MM [TZ]', "
            "'first Sunday HH:MM-HH:MM [TZ]' or 'day 1 HH:MM-HH:MM [TZ]'"
        )
    start = _parse_hhmm(match["start"], text)
    end_minutes = _minutes(match["end"], text)
    start_minutes = start.hour * 60 + start.minute
    if end_minutes <= start_minutes:
        raise ValueError(
            f"window {text!r} ends at {match['end']}, not after it starts at {match['start']}; "
            "a window must end later on the same day (use 24:00 for midnight)"
        )
    tz_name = match["tz"] or "UTC"
    try:
        tz = ZoneInfo("UTC" if tz_name.upper() == "UTC" else tz_name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"window {text!r}: unknown time zone {tz_name!r}") from None
    weekday = None
    if match["weekday"]:
        key = match["weekday"].lower()
        if key not in WEEKDAYS and key.endswith("s"):
            key = key[:-1]  # "Sundays"
        if key not in WEEKDAYS:
            raise ValueError(f"window {text!r}: {match['weekday']!r} is not a day of the week")
        weekday = WEEKDAYS[key]
    ordinal = ORDINALS[match["ordinal"].lower()] if match["ordinal"] else None
    if ordinal is not None and weekday is None:
        raise ValueError(f"window {text!r}: '{match['ordinal']}' needs a day of the week after it")
    day = int(match["day"]) if match["day"] else None
    if day is not None and not 1 <= day <= 28:
        raise ValueError(f"window {text!r}: day {day} is not in every month; use 1 to 28")
    return Window(text, start, end_minutes, tz, weekday, ordinal, day)


def _parse_hhmm(value: str, text: str) -> time:
    minutes = _minutes(value, text)
    if minutes >= 1440:
        raise ValueError(f"window {text!r}: {value} is not a start time of day")
    return time(minutes // 60, minutes % 60)


def _minutes(value: str, text: str) -> int:
    hours, minutes = (int(x) for x in value.split(":"))
    if minutes > 59 or hours > 24 or (hours == 24 and minutes):
        raise ValueError(f"window {text!r}: {value} is not a time of day")
    return hours * 60 + minutes
