"""Maintenance windows: the grammar, and the concrete UTC spans a window opens."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from maintd.plan.windows import Span, parse_window

BERLIN = ZoneInfo("Europe/Berlin")


def utc(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0, us: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, us, tzinfo=UTC)


# --- parsing -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "kind", "weekday", "ordinal", "day", "start", "end_minutes", "zone"),
    [
        ("02:00-03:00 UTC", "daily", None, None, None, time(2), 180, "UTC"),
        ("02:00-03:00", "daily", None, None, None, time(2), 180, "UTC"),
        ("2:00-3:30 utc", "daily", None, None, None, time(2), 210, "UTC"),
        ("02:00 - 03:00 UTC", "daily", None, None, None, time(2), 180, "UTC"),
        ("  02:00-03:00 UTC  ", "daily", None, None, None, time(2), 180, "UTC"),
        ("23:00-24:00 UTC", "daily", None, None, None, time(23), 1440, "UTC"),
        ("00:00-24:00 UTC", "daily", None, None, None, time(0), 1440, "UTC"),
        ("Sunday 03:00-05:00 UTC", "weekly", 6, None, None, time(3), 300, "UTC"),
        ("sunday 03:00-05:00 UTC", "weekly", 6, None, None, time(3), 300, "UTC"),
        ("Sun 03:00-05:00 UTC", "weekly", 6, None, None, time(3), 300, "UTC"),
        ("Sundays 03:00-05:00 UTC", "weekly", 6, None, None, time(3), 300, "UTC"),
        ("Mon 01:00-02:00", "weekly", 0, None, None, time(1), 120, "UTC"),
        ("Tuesdays 01:00-02:00", "weekly", 1, None, None, time(1), 120, "UTC"),
        ("Wed 01:00-02:00", "weekly", 2, None, None, time(1), 120, "UTC"),
        ("Thursday 01:00-02:00", "weekly", 3, None, None, time(1), 120, "UTC"),
        ("FRI 01:00-02:00", "weekly", 4, None, None, time(1), 120, "UTC"),
        ("Saturdays 01:00-02:00", "weekly", 5, None, None, time(1), 120, "UTC"),
        ("first Sunday 05:00-08:00 UTC", "monthly", 6, 1, None, time(5), 480, "UTC"),
        ("First Sundays 05:00-08:00 UTC", "monthly", 6, 1, None, time(5), 480, "UTC"),
        ("second Tue 05:00-08:00 UTC", "monthly", 1, 2, None, time(5), 480, "UTC"),
        ("third Wednesday 05:00-08:00 UTC", "monthly", 2, 3, None, time(5), 480, "UTC"),
        ("fourth Thu 05:00-08:00 UTC", "monthly", 3, 4, None, time(5), 480, "UTC"),
        ("last Friday 22:00-24:00 UTC", "monthly", 4, -1, None, time(22), 1440, "UTC"),
        ("day 1 05:00-08:00 Europe/Berlin", "monthly", None, None, 1, time(5), 480, "Europe/Berlin"),
        ("day 28 05:00-08:00 UTC", "monthly", None, None, 28, time(5), 480, "UTC"),
        ("Sunday 03:00-05:00 America/New_York", "weekly", 6, None, None, time(3), 300, "America/New_York"),
        ("02:00-03:00 Asia/Kolkata", "daily", None, None, None, time(2), 180, "Asia/Kolkata"),
    ],
)
def test_a_window_parses_into_its_parts(
    text: str,
    kind: str,
    weekday: int | None,
    ordinal: int | None,
    day: int | None,
    start: time,
    end_minutes: int,
    zone: str,
) -> None:
    window = parse_window(text)
    assert window.kind == kind
    assert (window.weekday, window.ordinal, window.day) == (weekday, ordinal, day)
    assert window.start == start
    assert window.end_minutes == end_minutes
    assert window.tz == ZoneInfo(zone)
    assert window.months is None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "is not a window"),
        ("sometime at night", "is not a window"),
        ("02:00 UTC", "is not a window"),
        ("0200-0300 UTC", "is not a window"),
        ("fifth Monday 01:00-02:00 UTC", "is not a window"),
        ("02:60-03:00 UTC", "02:60 is not a time of day"),
        ("25:00-26:00 UTC", "25:00 is not a time of day"),
        ("23:00-24:30 UTC", "24:30 is not a time of day"),
        ("24:00-24:00 UTC", "24:00 is not a start time of day"),
        ("05:00-03:00 UTC", "ends at 03:00, not after it starts at 05:00"),
        ("03:00-03:00 UTC", "ends at 03:00, not after it starts at 03:00"),
        ("22:00-02:00 UTC", "must end later on the same day"),
        ("Funday 01:00-02:00 UTC", "'Funday' is not a day of the week"),
        ("Sonntag 01:00-02:00 UTC", "is not a day of the week"),
        ("01:00-02:00 Mars/Olympus", "unknown time zone 'Mars/Olympus'"),
        ("01:00-02:00 CEST+1", "unknown time zone 'CEST+1'"),
        ("day 29 01:00-02:00 UTC", "day 29 is not in every month; use 1 to 28"),
        ("day 31 01:00-02:00 UTC", "day 31 is not in every month"),
        ("day 0 01:00-02:00 UTC", "day 0 is not in every month"),
        ("first 01:00-02:00 UTC", "'first' needs a day of the week after it"),
        ("last 01:00-02:00 UTC", "'last' needs a day of the week after it"),
    ],
)
def test_a_malformed_window_is_refused_with_the_reason(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("+", r"\+")):
        parse_window(text)


def test_a_window_keeps_the_text_it_was_written_as() -> None:
    assert parse_window("Sunday 03:00-05:00 UTC").text == "Sunday 03:00-05:00 UTC"


# --- occurrences ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "when", "expected"),
    [
        # A daily window is open every day, start included, end excluded.
        ("02:00-03:00 UTC", utc(2026, 11, 27, 2, 0), Span(utc(2026, 11, 27, 2), utc(2026, 11, 27, 3))),
        ("02:00-03:00 UTC", utc(2026, 11, 27, 2, 59), Span(utc(2026, 11, 27, 2), utc(2026, 11, 27, 3))),
        ("02:00-03:00 UTC", utc(2026, 11, 27, 3, 0), None),
        ("02:00-03:00 UTC", utc(2026, 11, 27, 1, 59), None),
        # A weekly window only on its weekday: 2026-11-29 is a Sunday, 2026-11-28 a Saturday.
        ("Sunday 03:00-05:00 UTC", utc(2026, 11, 29, 4), Span(utc(2026, 11, 29, 3), utc(2026, 11, 29, 5))),
        ("Sunday 03:00-05:00 UTC", utc(2026, 11, 28, 4), None),
        # The first Sunday of December 2026 is the 6th; the 13th is the second.
        (
            "first Sunday 05:00-08:00 UTC",
            utc(2026, 12, 6, 5),
            Span(utc(2026, 12, 6, 5), utc(2026, 12, 6, 8)),
        ),
        ("first Sunday 05:00-08:00 UTC", utc(2026, 12, 13, 6), None),
        # January 2026 has five Fridays: the last is the 30th, the fourth the 23rd.
        (
            "last Friday 22:00-24:00 UTC",
            utc(2026, 1, 30, 23, 30),
            Span(utc(2026, 1, 30, 22), utc(2026, 1, 31)),
        ),
        ("last Friday 22:00-24:00 UTC", utc(2026, 1, 23, 23), None),
        ("fourth Friday 22:00-24:00 UTC", utc(2026, 1, 23, 23), Span(utc(2026, 1, 23, 22), utc(2026, 1, 24))),
        ("fourth Friday 22:00-24:00 UTC", utc(2026, 1, 30, 23), None),
        # "day N" is that day of every month.
        ("day 15 05:00-08:00 UTC", utc(2026, 2, 15, 7), Span(utc(2026, 2, 15, 5), utc(2026, 2, 15, 8))),
        ("day 15 05:00-08:00 UTC", utc(2026, 2, 16, 7), None),
        # A window in another zone is open by that zone's clock: 05:00-08:00 CET is 04:00-07:00 UTC.
        (
            "day 1 05:00-08:00 Europe/Berlin",
            utc(2026, 12, 1, 4),
            Span(utc(2026, 12, 1, 4), utc(2026, 12, 1, 7)),
        ),
        ("day 1 05:00-08:00 Europe/Berlin", utc(2026, 12, 1, 7), None),
        # 23:00-24:00 in New York on Sunday 2026-11-29 is Monday 04:00-05:00 UTC.
        (
            "Sunday 23:00-24:00 America/New_York",
            utc(2026, 11, 30, 4, 30),
            Span(utc(2026, 11, 30, 4), utc(2026, 11, 30, 5)),
        ),
        ("Sunday 23:00-24:00 America/New_York", utc(2026, 11, 29, 4, 30), None),
    ],
)
def test_occurrence_at_is_the_span_containing_the_instant(
    text: str, when: datetime, expected: Span | None
) -> None:
    assert parse_window(text).occurrence_at(when) == expected


@pytest.mark.parametrize(
    ("text", "after", "start", "end"),
    [
        # Strictly after: at the very start of today's window, the next is tomorrow's.
        ("02:00-03:00 UTC", utc(2026, 11, 27, 1), utc(2026, 11, 27, 2), utc(2026, 11, 27, 3)),
        ("02:00-03:00 UTC", utc(2026, 11, 27, 2), utc(2026, 11, 28, 2), utc(2026, 11, 28, 3)),
        ("02:00-03:00 UTC", utc(2026, 11, 27, 2, 30), utc(2026, 11, 28, 2), utc(2026, 11, 28, 3)),
        # Friday 2026-11-27 → Sunday 2026-11-29, then a week later.
        ("Sunday 03:00-05:00 UTC", utc(2026, 11, 27, 1), utc(2026, 11, 29, 3), utc(2026, 11, 29, 5)),
        ("Sun 03:00-05:00 UTC", utc(2026, 11, 29, 3), utc(2026, 12, 6, 3), utc(2026, 12, 6, 5)),
        # After December's first Sunday has begun, the next is January's (2027-01-03).
        ("first Sunday 05:00-08:00 UTC", utc(2026, 11, 27), utc(2026, 12, 6, 5), utc(2026, 12, 6, 8)),
        ("first Sunday 05:00-08:00 UTC", utc(2026, 12, 6, 6), utc(2027, 1, 3, 5), utc(2027, 1, 3, 8)),
        ("second Sunday 05:00-08:00 UTC", utc(2026, 3, 1), utc(2026, 3, 8, 5), utc(2026, 3, 8, 8)),
        # The last Friday: July 2026 ends on one (the 31st); August's is the 28th.
        ("last Friday 22:00-24:00 UTC", utc(2026, 7, 25), utc(2026, 7, 31, 22), utc(2026, 8, 1)),
        ("last Friday 22:00-24:00 UTC", utc(2026, 7, 31, 22), utc(2026, 8, 28, 22), utc(2026, 8, 29)),
        ("day 1 05:00-08:00 UTC", utc(2026, 1, 15), utc(2026, 2, 1, 5), utc(2026, 2, 1, 8)),
        ("day 28 05:00-08:00 UTC", utc(2026, 2, 28, 9), utc(2026, 3, 28, 5), utc(2026, 3, 28, 8)),
        # A 24:00 end is the next midnight.
        ("22:00-24:00 UTC", utc(2026, 12, 31, 23), utc(2027, 1, 1, 22), utc(2027, 1, 2)),
    ],
)
def test_next_start_is_the_first_occurrence_starting_strictly_after(
    text: str, after: datetime, start: datetime, end: datetime
) -> None:
    assert parse_window(text).next_start(after) == Span(start, end)


def test_a_window_ending_at_midnight_is_open_until_the_last_instant_of_the_day() -> None:
    window = parse_window("23:00-24:00 UTC")
    just_before_midnight = utc(2026, 11, 27, 23, 59, 59, 999_999)
    assert window.occurrence_at(just_before_midnight) == Span(utc(2026, 11, 27, 23), utc(2026, 11, 28))
    assert window.occurrence_at(utc(2026, 11, 28)) is None


def test_occurrences_are_reported_in_utc() -> None:
    occurrence = parse_window("day 1 05:00-08:00 Europe/Berlin").next_start(utc(2026, 11, 27))
    assert occurrence.start.utcoffset() == timedelta(0)
    assert occurrence.end.utcoffset() == timedelta(0)


def test_a_window_restricted_to_months_opens_only_in_those_months() -> None:
    quarterly = parse_window("first Sunday 05:00-08:00 UTC").in_months((1, 4, 7, 10))
    assert quarterly.kind == "monthly"
    # February's first Sunday (the 1st) is skipped: the next after January's is April 5.
    assert quarterly.next_start(utc(2026, 1, 4, 6)).start == utc(2026, 4, 5, 5)
    assert quarterly.occurrence_at(utc(2026, 2, 1, 6)) is None
    assert quarterly.occurrence_at(utc(2026, 1, 4, 6)) == Span(utc(2026, 1, 4, 5), utc(2026, 1, 4, 8))


def test_successive_weekly_occurrences_are_seven_days_apart() -> None:
    window = parse_window("Wednesday 01:00-02:00 UTC")
    starts = []
    after = utc(2026, 1, 1)
    for _ in range(5):
        after = window.next_start(after).start
        starts.append(after)
    assert all(s.weekday() == 2 for s in starts)
    assert {b - a for a, b in itertools.pairwise(starts)} == {timedelta(days=7)}


# --- time zones and DST ----------------------------------------------------------------------------------
# Europe/Berlin: on 2026-03-29 02:00 CET becomes 03:00 CEST (UTC+1 → UTC+2);
# on 2026-10-25 03:00 CEST becomes 02:00 CET (UTC+2 → UTC+1).


@pytest.mark.parametrize(
    ("after", "start", "end", "start_offset", "end_offset"),
    [
        # The Sunday before: CET all along, 01:00-04:00 local is 00:00-03:00 UTC.
        (utc(2026, 3, 21), utc(2026, 3, 22, 0), utc(2026, 3, 22, 3), 1, 1),
        # Spring forward: opens at 01:00 CET, closes at 04:00 CEST, two real hours later.
        (utc(2026, 3, 28), utc(2026, 3, 29, 0), utc(2026, 3, 29, 2), 1, 2),
        # The Sunday after: CEST all along, 01:00-04:00 local is 23:00-02:00 UTC.
        (utc(2026, 4, 4), utc(2026, 4, 4, 23), utc(2026, 4, 5, 2), 2, 2),
        # Fall back: opens at 01:00 CEST, closes at 04:00 CET, four real hours later.
        (utc(2026, 10, 24), utc(2026, 10, 24, 23), utc(2026, 10, 25, 3), 2, 1),
        (utc(2026, 10, 31), utc(2026, 11, 1, 0), utc(2026, 11, 1, 3), 1, 1),
    ],
)
def test_a_berlin_window_keeps_its_local_hours_across_the_dst_switch(
    after: datetime, start: datetime, end: datetime, start_offset: int, end_offset: int
) -> None:
    window = parse_window("Sunday 01:00-04:00 Europe/Berlin")
    occurrence = window.next_start(after)
    assert occurrence == Span(start, end)
    local_start, local_end = occurrence.start.astimezone(BERLIN), occurrence.end.astimezone(BERLIN)
    assert (local_start.hour, local_start.minute) == (1, 0)
    assert (local_end.hour, local_end.minute) == (4, 0)
    assert local_start.utcoffset() == timedelta(hours=start_offset)
    assert local_end.utcoffset() == timedelta(hours=end_offset)


@pytest.mark.parametrize(
    ("day", "offset"),
    [(28, 1), (29, 2), (30, 2)],
)
def test_a_daily_berlin_window_opens_at_the_same_local_time_around_the_spring_switch(
    day: int, offset: int
) -> None:
    window = parse_window("05:00-06:00 Europe/Berlin")
    occurrence = window.next_start(utc(2026, 3, day - 1, 12))
    assert occurrence.start == utc(2026, 3, day, 5 - offset)
    assert occurrence.start.astimezone(BERLIN).hour == 5
    assert occurrence.start.astimezone(BERLIN).utcoffset() == timedelta(hours=offset)
    assert occurrence.end - occurrence.start == timedelta(hours=1)


def test_a_berlin_window_on_the_night_the_clocks_go_back_covers_the_repeated_hour() -> None:
    # 02:00-03:00 happens twice on 2026-10-25: the window runs from the first 02:00 (CEST)
    # to the only 03:00 (CET), two real hours.
    window = parse_window("02:00-03:00 Europe/Berlin")
    occurrence = window.next_start(utc(2026, 10, 24, 12))
    assert occurrence == Span(utc(2026, 10, 25, 0), utc(2026, 10, 25, 2))
    assert window.occurrence_at(utc(2026, 10, 25, 1, 30)) == occurrence


def test_a_berlin_window_ending_at_24_00_ends_at_local_midnight_in_summer_and_winter() -> None:
    window = parse_window("22:00-24:00 Europe/Berlin")
    summer = window.next_start(utc(2026, 7, 1))
    winter = window.next_start(utc(2026, 12, 1))
    assert summer == Span(utc(2026, 7, 1, 20), utc(2026, 7, 1, 22))
    assert winter == Span(utc(2026, 12, 1, 21), utc(2026, 12, 1, 23))
    assert summer.end.astimezone(BERLIN).time() == time(0)
    assert winter.end.astimezone(BERLIN).time() == time(0)


def test_an_instant_belongs_to_the_window_of_the_local_day_not_the_utc_day() -> None:
    # Monday 00:30 in Berlin is still Sunday 23:30 UTC: a Monday window is open.
    window = parse_window("Monday 00:00-02:00 Europe/Berlin")
    assert window.occurrence_at(utc(2026, 11, 29, 23, 30)) == Span(
        utc(2026, 11, 29, 23), utc(2026, 11, 30, 1)
    )
