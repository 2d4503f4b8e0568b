"""Who is on call when: pure functions from a schedule and UTC instants to shifts in UTC.

A rotation hands off at a local wall-clock time in the schedule's zone, so a
Friday 17:00 Europe/Berlin handoff is 16:00 UTC in summer and 17:00 UTC in
winter, and the shift that spans a DST change is an hour shorter or longer.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from pydantic import AwareDatetime, BaseModel, ConfigDict

from maintd.plan.oncall import Layer, OnCallSchedule, Override, Rotation, parse_restriction

_Segment = tuple[datetime, datetime, str]
_INSTANT = timedelta(microseconds=1)


class Shift(BaseModel):
    """``person`` is on call for ``layer`` of ``schedule`` from ``start`` to ``end`` (aware UTC)."""

    model_config = ConfigDict(frozen=True)

    schedule: str
    layer: str
    person: str
    start: AwareDatetime
    end: AwareDatetime


def _wall(tz: ZoneInfo, day: date, at: time) -> datetime:
    # zoneinfo derives the offset from the wall time: a time in the spring-forward gap
    # takes the offset before the change (fold=0), so it lands an hour later in real time.
    return datetime.combine(day, at, tzinfo=tz).astimezone(UTC)


def _epoch(rotation: Rotation) -> date:
    """The local date of the first handoff: the handoff weekday on or after ``start``."""
    weekday = rotation.parsed_handoff().weekday
    if weekday is None:
        return rotation.start
    return rotation.start + timedelta(days=(weekday - rotation.start.weekday()) % 7)


def _shift_start(rotation: Rotation, tz: ZoneInfo, k: int) -> datetime:
    day = _epoch(rotation) + timedelta(days=k * rotation.every.days)
    return _wall(tz, day, rotation.parsed_handoff().at)


def _shift_index(rotation: Rotation, tz: ZoneInfo, at: datetime) -> int:
    """The number of the rotation shift containing ``at``; negative before the first handoff."""
    days = (at.astimezone(tz).date() - _epoch(rotation)).days
    k = days // rotation.every.days
    return k - 1 if _shift_start(rotation, tz, k) > at else k


def _rotation_segments(rotation: Rotation, tz: ZoneInfo, start: datetime, end: datetime) -> list[_Segment]:
    out: list[_Segment] = []
    k = max(_shift_index(rotation, tz, start), 0)
    while (begin := _shift_start(rotation, tz, k)) < end:
        finish = _shift_start(rotation, tz, k + 1)
        if finish > start:
            person = rotation.members[k % len(rotation.members)]
            out.append((max(begin, start), min(finish, end), person))
        k += 1
    return out


def _active_spans(
    restrictions: list[str], tz: ZoneInfo, start: datetime, end: datetime
) -> list[tuple[datetime, datetime]]:
    """The restrictions' occurrences overlapping [start, end), merged, in UTC."""
    parsed = [parse_restriction(text) for text in restrictions]
    spans: list[tuple[datetime, datetime]] = []
    day = start.astimezone(tz).date() - timedelta(days=8)  # a weekly range lasts at most 7 days
    last = end.astimezone(tz).date()
    while day <= last:
        for r in parsed:
            if day.weekday() in r.weekdays:
                begin, finish = _wall(tz, day, r.start), _wall(tz, day + timedelta(days=r.days), r.end)
                if begin < end and finish > start:
                    spans.append((max(begin, start), min(finish, end)))
        day += timedelta(days=1)
    merged: list[tuple[datetime, datetime]] = []
    for begin, finish in sorted(spans):
        if merged and begin <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], finish))
        else:
            merged.append((begin, finish))
    return merged


def _restrict(segments: list[_Segment], spans: list[tuple[datetime, datetime]]) -> list[_Segment]:
    out: list[_Segment] = []
    for begin, finish, person in segments:
        for s_begin, s_finish in spans:
            lo, hi = max(begin, s_begin), min(finish, s_finish)
            if lo < hi:
                out.append((lo, hi, person))
    return out


def _aware(value: datetime, tz: ZoneInfo) -> datetime:
    return (value.replace(tzinfo=tz) if value.tzinfo is None else value).astimezone(UTC)


def _override(
    segments: list[_Segment], overrides: Iterable[Override], tz: ZoneInfo, start: datetime, end: datetime
) -> list[_Segment]:
    """Each override replaces whoever is on call in its span; a later override wins over an earlier one."""
    for override in overrides:
        o_start, o_end = _aware(override.start, tz), _aware(override.end, tz)
        if o_end <= start or o_start >= end:
            continue
        kept: list[_Segment] = []
        for begin, finish, person in segments:
            if begin < o_start:
                kept.append((begin, min(finish, o_start), person))
            if finish > o_end:
                kept.append((max(begin, o_end), finish, person))
        kept.append((max(o_start, start), min(o_end, end), override.person))
        segments = sorted(kept)
    return segments


def _merge(segments: list[_Segment]) -> list[_Segment]:
    out: list[_Segment] = []
    for begin, finish, person in sorted(segments):
        if out and out[-1][2] == person and out[-1][1] == begin:
            out[-1] = (out[-1][0], finish, person)
        else:
            out.append((begin, finish, person))
    return out


def layer_shifts(schedule: OnCallSchedule, layer: Layer, start: datetime, end: datetime) -> list[Shift]:
    """One layer's shifts overlapping [start, end), cut to it: rotation, then restrictions, then overrides."""
    start, end = start.astimezone(UTC), end.astimezone(UTC)
    if end <= start:
        return []
    tz = schedule.zone
    segments = _rotation_segments(layer.rotation, tz, start, end)
    if layer.restrictions:
        segments = _restrict(segments, _active_spans(layer.restrictions, tz, start, end))
    overrides = list(layer.overrides)
    if layer is schedule.layers[0]:
        overrides += schedule.overrides
    segments = _merge(_override(segments, overrides, tz, start, end))
    return [Shift(schedule=schedule.name, layer=layer.name, person=p, start=b, end=f) for b, f, p in segments]


def shifts(schedule: OnCallSchedule, start: datetime, end: datetime) -> list[Shift]:
    """Every layer's shifts overlapping [start, end), by start time then layer order."""
    order = {layer.name: i for i, layer in enumerate(schedule.layers)}
    found = [s for layer in schedule.layers for s in layer_shifts(schedule, layer, start, end)]
    return sorted(found, key=lambda s: (s.start, order[s.layer]))


def on_call(schedule: OnCallSchedule, at: datetime) -> dict[str, str | None]:
    """Who is on call at ``at``, per layer in order; ``None`` where nobody is."""
    out: dict[str, str | None] = {}
    for layer in schedule.layers:
        found = layer_shifts(schedule, layer, at, at + _INSTANT)
        out[layer.name] = found[0].person if found else None
    return out


def person_shifts(
    schedules: Iterable[OnCallSchedule], person: str, start: datetime, end: datetime
) -> list[Shift]:
    """``person``'s shifts in every schedule, by start time."""
    found = [s for schedule in schedules for s in shifts(schedule, start, end) if s.person == person]
    return sorted(found, key=lambda s: (s.start, s.schedule, s.layer))
