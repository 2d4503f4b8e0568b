"""On-call plan sections: ``people`` and ``schedules`` (layers, rotations, restrictions, overrides).

Times of day are local wall-clock times in the schedule's ``time_zone``; computing
shifts from them (``maintd.oncall.rotation``) keeps them across DST changes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Annotated, Self
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

from maintd.plan.base import StrictModel
from maintd.plan.notify import NotifyEntry
from maintd.plan.types import Duration
from maintd.plan.windows import WEEKDAYS

# The same rule as target and task names (maintd.plan.models.Name, which imports this module).
Name = Annotated[
    str,
    StringConstraints(pattern=r"^[a-z0-9][a-z0-9_.-]{0,62}$"),
    Field(description="lower-case letters, digits, '-', '_' and '.', at most 63 characters"),
]


def _zone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"{value!r} is not an IANA time zone (e.g. UTC, Europe/Berlin)") from None
    return value


TimeZone = Annotated[str, AfterValidator(_zone), Field(description="an IANA time zone, e.g. Europe/Berlin")]


class Person(StrictModel):
    name: Name
    email: str = Field(pattern=r"^[^@\s]+@[^@\s]+$")
    phone: str | None = None
    notify: list[NotifyEntry] = Field(
        default=[],
        description="notification rules, channels in order: apprise URLs (or env:/file: references), "
        "or {url, after}",
    )
    roles: list[Name] = Field(default=[], description="roles escalation policies name, e.g. team-lead")
    time_zone: TimeZone | None = None


_HHMM = r"(\d{1,2}):(\d{2})"


def _time(hour: str, minute: str, text: str, *, allow_24: bool = False) -> time | None:
    """A time of day; ``None`` stands for 24:00 when ``allow_24``."""
    h, m = int(hour), int(minute)
    if allow_24 and (h, m) == (24, 0):
        return None
    if h > 23 or m > 59:
        raise ValueError(f"{text!r}: {hour}:{minute} is not a time of day")
    return time(h, m)


def _weekday(name: str, text: str) -> int:
    key = name.lower()
    if key not in WEEKDAYS:
        raise ValueError(f"{text!r}: {name!r} is not a day of the week")
    return WEEKDAYS[key]


@dataclass(frozen=True)
class Handoff:
    weekday: int | None  # None: any day (the rotation's start date)
    at: time


def parse_handoff(text: str) -> Handoff:
    """``Friday 17:00`` or ``09:00``."""
    match = re.fullmatch(rf"(?:([A-Za-z]+)\s+)?{_HHMM}", text.strip())
    if not match:
        raise ValueError(f"{text!r} is not a handoff: write 'Friday 17:00' or '09:00'")
    at = _time(match[2], match[3], text)
    assert at is not None
    return Handoff(_weekday(match[1], text) if match[1] else None, at)


@dataclass(frozen=True)
class Restriction:
    """Active from ``start`` on each of ``weekdays`` until ``end``, ``days`` local days later."""

    weekdays: frozenset[int]
    start: time
    days: int
    end: time


_RESTRICTION = re.compile(
    rf"^(?:(?P<days>[A-Za-z]+(?:\s*[-,]\s*[A-Za-z]+)*)\s+)?{_HHMM}\s*-\s*(?:(?P<endday>[A-Za-z]+)\s+)?{_HHMM}$"
)


def parse_restriction(text: str) -> Restriction:
    """``09:00-17:00`` (daily), ``Mon-Fri 09:00-17:00``, ``Sat,Sun 00:00-24:00``, ``Fri 17:00-Mon 09:00``.

    A daily range whose end is not after its start runs into the next day (``17:00-09:00``).
    """
    match = _RESTRICTION.match(text.strip())
    if not match:
        raise ValueError(
            f"{text!r} is not a restriction: write '09:00-17:00', 'Mon-Fri 09:00-17:00' "
            "or 'Fri 17:00-Mon 09:00'"
        )
    days_text, h1, m1, end_day, h2, m2 = match.groups()
    start = _time(h1, m1, text)
    end = _time(h2, m2, text, allow_24=True)
    assert start is not None
    if end_day is not None:
        if days_text is None or re.search(r"[-,]", days_text):
            raise ValueError(f"{text!r}: a weekly range names one start day, e.g. 'Fri 17:00-Mon 09:00'")
        first, last = _weekday(days_text, text), _weekday(end_day, text)
        days = (last - first) % 7
        if end is None:
            end, days = time(0), days + 1
        elif days == 0 and end <= start:
            days = 7
        return Restriction(frozenset({first}), start, days, end)
    weekdays = frozenset(range(7)) if days_text is None else _weekday_set(days_text, text)
    if end is None:
        return Restriction(weekdays, start, 1, time(0))
    return Restriction(weekdays, start, 0 if end > start else 1, end)


def _weekday_set(text: str, whole: str) -> frozenset[int]:
    out: set[int] = set()
    for part in re.split(r"\s*,\s*", text):
        first, _, last = (p.strip() for p in part.partition("-"))
        a = _weekday(first, whole)
        b = _weekday(last, whole) if last else a
        out.update((a + i) % 7 for i in range((b - a) % 7 + 1))
    return frozenset(out)


def _whole_days(value: timedelta) -> timedelta:
    if value < timedelta(days=1) or value % timedelta(days=1):
        raise ValueError("a rotation hands off after whole days: write 1d, 3d, 1w or 2w")
    return value


class Rotation(StrictModel):
    members: list[Name] = Field(description="people names, in turn order")
    every: Annotated[Duration, AfterValidator(_whole_days)] = timedelta(weeks=1)
    handoff: str = Field(default="Friday 17:00", description="'Weekday HH:MM' or 'HH:MM', local time")
    start: date = Field(description="the rotation counts from the first handoff on or after this date")

    @field_validator("members")
    @classmethod
    def _not_empty(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("a rotation needs at least one member")
        return value

    @field_validator("handoff")
    @classmethod
    def _handoff(cls, value: str) -> str:
        parse_handoff(value)
        return value

    def parsed_handoff(self) -> Handoff:
        return parse_handoff(self.handoff)


class Override(StrictModel):
    """``person`` is on call instead of the rotation from ``start`` to ``end``."""

    person: Name
    start: datetime = Field(description="ISO 8601; without an offset, the schedule's time zone")
    end: datetime
    reason: str = ""

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        naive = (self.start.tzinfo is None, self.end.tzinfo is None)
        if naive[0] != naive[1]:
            raise ValueError("give start and end both with an offset or both without")
        if self.end <= self.start:
            raise ValueError(f"override ends at {self.end}, not after it starts at {self.start}")
        return self


def _restriction(value: str) -> str:
    parse_restriction(value)
    return value


class Layer(StrictModel):
    name: Name
    rotation: Rotation
    restrictions: list[Annotated[str, AfterValidator(_restriction)]] = Field(
        default=[], description="local time ranges when the layer is active; none: always"
    )
    overrides: list[Override] = []


class OnCallSchedule(StrictModel):
    name: Name
    description: str = ""
    time_zone: TimeZone = "UTC"
    layers: list[Layer] = Field(description="in order, e.g. primary then secondary")
    overrides: list[Override] = Field(default=[], description="overrides of the first layer")

    @field_validator("layers")
    @classmethod
    def _layers(cls, value: list[Layer]) -> list[Layer]:
        if not value:
            raise ValueError("a schedule needs at least one layer")
        names = [layer.name for layer in value]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"layer names must be unique in a schedule; twice: {twice}")
        return value

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.time_zone)


Loc = tuple[str | int, ...]


def reference_problems(people: list[Person], schedules: list[OnCallSchedule]) -> list[tuple[Loc, str]]:
    """Names defined twice and people that do not exist, each with its place.

    Places start with the list and the position in ``people`` / ``schedules`` as given.
    """
    problems: list[tuple[Loc, str]] = []
    known: set[str] = set()
    for i, person in enumerate(people):
        if person.name in known:
            problems.append((("people", i, "name"), f"person {person.name!r} is defined twice"))
        known.add(person.name)
    seen: set[str] = set()
    for i, schedule in enumerate(schedules):
        if schedule.name in seen:
            problems.append((("schedules", i, "name"), f"schedule {schedule.name!r} is defined twice"))
        seen.add(schedule.name)
        for j, layer in enumerate(schedule.layers):
            at: Loc = ("schedules", i, "layers", j)
            for k, member in enumerate(layer.rotation.members):
                if member not in known:
                    problems.append(((*at, "rotation", "members", k), f"unknown person {member!r}"))
            for k, override in enumerate(layer.overrides):
                if override.person not in known:
                    problems.append(((*at, "overrides", k, "person"), f"unknown person {override.person!r}"))
        for k, override in enumerate(schedule.overrides):
            if override.person not in known:
                problems.append(
                    (("schedules", i, "overrides", k, "person"), f"unknown person {override.person!r}")
                )
    return problems
