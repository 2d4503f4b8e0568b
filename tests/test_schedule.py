"""Schedules: when a task is due (cron, interval, cadence, windows), and which schedules are refused."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from maintd.plan.models import Retry
from maintd.plan.schedule import Cadence, Due, Misfire, Schedule, Timing
from maintd.plan.windows import Span

BERLIN = ZoneInfo("Europe/Berlin")


def utc(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0, us: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, us, tzinfo=UTC)


def timing(**fields: Any) -> Timing:
    return Schedule.model_validate(fields).timing()


def due_times(t: Timing, after: datetime, count: int) -> list[datetime]:
    out = []
    for _ in range(count):
        after = t.next_due(after).at
        out.append(after)
    return out


# --- cron --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cron", "after", "expected"),
    [
        ("0 2 * * *", utc(2026, 11, 27, 1), utc(2026, 11, 27, 2)),
        ("0 2 * * *", utc(2026, 11, 27, 2), utc(2026, 11, 28, 2)),
        ("*/15 * * * *", utc(2026, 11, 27, 1, 7), utc(2026, 11, 27, 1, 15)),
        ("0 3 * * 0", utc(2026, 11, 27), utc(2026, 11, 29, 3)),
        ("0 5 1 * *", utc(2026, 11, 27), utc(2026, 12, 1, 5)),
        ("@daily", utc(2026, 11, 27, 1), utc(2026, 11, 28)),
    ],
)
def test_a_cron_schedule_is_due_at_its_next_match_in_utc(
    cron: str, after: datetime, expected: datetime
) -> None:
    assert timing(cron=cron).next_due(after) == Due(expected)


@pytest.mark.parametrize(
    ("after", "expected", "offset"),
    [
        # 03:00 in Berlin is 02:00 UTC in winter (CET) and 01:00 UTC in summer (CEST).
        (utc(2026, 1, 10), utc(2026, 1, 10, 2), 1),
        (utc(2026, 7, 10), utc(2026, 7, 10, 1), 2),
        # Around the spring switch (2026-03-29) the local hour stays 03:00.
        (utc(2026, 3, 28, 12), utc(2026, 3, 29, 1), 2),
        (utc(2026, 3, 27, 12), utc(2026, 3, 28, 2), 1),
        # Around the autumn switch (2026-10-25) too.
        (utc(2026, 10, 24, 12), utc(2026, 10, 25, 2), 1),
        (utc(2026, 10, 23, 12), utc(2026, 10, 24, 1), 2),
    ],
)
def test_a_cron_schedule_in_a_time_zone_keeps_its_local_time(
    after: datetime, expected: datetime, offset: int
) -> None:
    due = timing(cron="0 3 * * *", timezone="Europe/Berlin").next_due(after)
    assert due.at == expected
    local = due.at.astimezone(BERLIN)
    assert (local.hour, local.minute) == (3, 0)
    assert local.utcoffset() == timedelta(hours=offset)


def test_a_daily_cron_runs_once_on_the_night_the_clocks_go_back() -> None:
    # 02:30 happens twice in Berlin on 2026-10-25 (00:30 UTC in CEST, 01:30 UTC in CET).
    t = timing(cron="30 2 * * *", timezone="Europe/Berlin")
    assert due_times(t, utc(2026, 10, 23, 12), 3) == [
        utc(2026, 10, 24, 0, 30),
        utc(2026, 10, 25, 0, 30),
        utc(2026, 10, 26, 1, 30),
    ]


def test_an_hourly_cron_keeps_running_every_real_hour_when_the_clocks_go_back() -> None:
    t = timing(cron="0 * * * *", timezone="Europe/Berlin")
    assert due_times(t, utc(2026, 10, 24, 23, 30), 4) == [
        utc(2026, 10, 25, 0),
        utc(2026, 10, 25, 1),
        utc(2026, 10, 25, 2),
        utc(2026, 10, 25, 3),
    ]


def test_a_cron_time_skipped_by_the_spring_switch_still_runs_that_day() -> None:
    # 02:30 does not exist in Berlin on 2026-03-29; the run happens once, just after the gap.
    t = timing(cron="30 2 * * *", timezone="Europe/Berlin")
    days = [d.astimezone(BERLIN).date().day for d in due_times(t, utc(2026, 3, 27, 12), 3)]
    assert days == [28, 29, 30]


def test_due_times_are_returned_in_utc_whatever_the_schedule_zone() -> None:
    due = timing(cron="0 3 * * *", timezone="America/New_York").next_due(utc(2026, 11, 27))
    assert due.at == utc(2026, 11, 27, 8)
    assert due.at.utcoffset() == timedelta(0)


def test_a_cron_schedule_is_due_now_when_now_matches() -> None:
    t = timing(cron="0 2 * * *")
    assert t.first_due(utc(2026, 11, 27, 2)) == Due(utc(2026, 11, 27, 2))
    assert t.first_due(utc(2026, 11, 27, 2, 0, 1)) == Due(utc(2026, 11, 28, 2))


# --- every ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("every", "step"),
    [
        ("30s", timedelta(seconds=30)),
        ("1m", timedelta(minutes=1)),
        ("1h30m", timedelta(minutes=90)),
        ("2d", timedelta(days=2)),
        (90, timedelta(seconds=90)),
        ("1s", timedelta(seconds=1)),
    ],
)
def test_an_interval_schedule_is_due_every_interval(every: str | int, step: timedelta) -> None:
    t = timing(every=every)
    start = utc(2026, 11, 27, 1)
    assert t.next_due(start) == Due(start + step)
    assert due_times(t, start, 3) == [start + step, start + 2 * step, start + 3 * step]


def test_an_interval_schedule_is_due_at_once_when_first_seen() -> None:
    assert timing(every="5m").first_due(utc(2026, 11, 27, 1, 7)) == Due(utc(2026, 11, 27, 1, 7))


def test_an_interval_ignores_the_schedule_time_zone_across_dst() -> None:
    # Real time, not wall time: an hourly interval stays one hour apart when the clocks go back.
    t = timing(every="1h", timezone="Europe/Berlin")
    assert due_times(t, utc(2026, 10, 25, 0), 3) == [
        utc(2026, 10, 25, 1),
        utc(2026, 10, 25, 2),
        utc(2026, 10, 25, 3),
    ]


def test_an_interval_inside_a_window_waits_for_the_window_to_open() -> None:
    t = timing(every="10m", window="02:00-03:00 UTC")
    assert t.first_due(utc(2026, 11, 27, 1)) == Due(utc(2026, 11, 27, 2), utc(2026, 11, 27, 3))
    assert t.first_due(utc(2026, 11, 27, 2, 5)) == Due(utc(2026, 11, 27, 2, 5), utc(2026, 11, 27, 3))
    assert t.next_due(utc(2026, 11, 27, 2, 5)) == Due(utc(2026, 11, 27, 2, 15), utc(2026, 11, 27, 3))
    # The next step would fall after the window closes: due when it opens tomorrow.
    assert t.next_due(utc(2026, 11, 27, 2, 55)) == Due(utc(2026, 11, 28, 2), utc(2026, 11, 28, 3))


# --- cadences --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cadence", "window", "after", "start", "end"),
    [
        ("daily", "02:00-03:00 UTC", utc(2026, 11, 27, 1), utc(2026, 11, 27, 2), utc(2026, 11, 27, 3)),
        ("daily", "02:00-03:00 UTC", utc(2026, 11, 27, 2), utc(2026, 11, 28, 2), utc(2026, 11, 28, 3)),
        ("weekly", "Sunday 03:00-05:00 UTC", utc(2026, 11, 27), utc(2026, 11, 29, 3), utc(2026, 11, 29, 5)),
        ("weekly", "Sunday 03:00-05:00 UTC", utc(2026, 11, 29, 3), utc(2026, 12, 6, 3), utc(2026, 12, 6, 5)),
        (
            "monthly",
            "first Sunday 05:00-08:00 UTC",
            utc(2026, 11, 27),
            utc(2026, 12, 6, 5),
            utc(2026, 12, 6, 8),
        ),
        (
            "monthly",
            "day 1 05:00-08:00 Europe/Berlin",
            utc(2026, 11, 27),
            utc(2026, 12, 1, 4),
            utc(2026, 12, 1, 7),
        ),
        (
            "monthly",
            "last Friday 22:00-24:00 UTC",
            utc(2026, 11, 1),
            utc(2026, 11, 27, 22),
            utc(2026, 11, 28),
        ),
        # Quarterly: the monthly window, in January, April, July and October only.
        (
            "quarterly",
            "first Sunday 05:00-08:00 UTC",
            utc(2026, 11, 27),
            utc(2027, 1, 3, 5),
            utc(2027, 1, 3, 8),
        ),
        (
            "quarterly",
            "first Sunday 05:00-08:00 UTC",
            utc(2026, 1, 4, 5),
            utc(2026, 4, 5, 5),
            utc(2026, 4, 5, 8),
        ),
        ("quarterly", "day 1 05:00-08:00 UTC", utc(2026, 7, 1, 5), utc(2026, 10, 1, 5), utc(2026, 10, 1, 8)),
    ],
)
def test_a_cadence_is_due_when_its_window_opens_and_until_it_closes(
    cadence: str, window: str, after: datetime, start: datetime, end: datetime
) -> None:
    assert timing(cadence=cadence, window=window).next_due(after) == Due(start, end)


def test_a_quarterly_cadence_runs_four_times_a_year() -> None:
    t = timing(cadence="quarterly", window="first Sunday 05:00-08:00 UTC")
    assert due_times(t, utc(2025, 12, 31), 5) == [
        utc(2026, 1, 4, 5),
        utc(2026, 4, 5, 5),
        utc(2026, 7, 5, 5),
        utc(2026, 10, 4, 5),
        utc(2027, 1, 3, 5),
    ]


def test_a_cadence_whose_window_is_open_now_is_due_now() -> None:
    t = timing(cadence="weekly", window="Sunday 03:00-05:00 UTC")
    now = utc(2026, 11, 29, 4, 10)
    assert t.first_due(now) == Due(now, utc(2026, 11, 29, 5))


def test_a_cadence_whose_window_is_closed_now_waits_for_the_next_opening() -> None:
    t = timing(cadence="weekly", window="Sunday 03:00-05:00 UTC")
    assert t.first_due(utc(2026, 11, 29, 5)) == Due(utc(2026, 12, 6, 3), utc(2026, 12, 6, 5))
    assert t.first_due(utc(2026, 11, 27, 1)) == Due(utc(2026, 11, 29, 3), utc(2026, 11, 29, 5))


def test_a_quarterly_cadence_is_not_due_in_an_open_window_outside_its_months() -> None:
    t = timing(cadence="quarterly", window="first Sunday 05:00-08:00 UTC")
    # 2026-02-01 is February's first Sunday: the monthly window is open, the quarterly one is not.
    assert t.window_at(utc(2026, 2, 1, 6)) is None
    assert not t.in_window(utc(2026, 2, 1, 6))
    assert t.first_due(utc(2026, 2, 1, 6)) == Due(utc(2026, 4, 5, 5), utc(2026, 4, 5, 8))


def test_window_at_and_in_window_report_the_open_occurrence() -> None:
    t = timing(cadence="daily", window="02:00-03:00 UTC")
    assert t.window_at(utc(2026, 11, 27, 2, 30)) == Span(utc(2026, 11, 27, 2), utc(2026, 11, 27, 3))
    assert t.in_window(utc(2026, 11, 27, 2, 30))
    assert t.window_at(utc(2026, 11, 27, 3)) is None
    assert not t.in_window(utc(2026, 11, 27, 3))


def test_a_schedule_without_a_window_is_always_in_window() -> None:
    t = timing(every="1m")
    assert t.window_at(utc(2026, 11, 27, 12)) is None
    assert t.in_window(utc(2026, 11, 27, 12))


def test_a_cadence_in_berlin_is_due_at_the_same_local_time_across_the_dst_switch() -> None:
    t = timing(cadence="weekly", window="Sunday 05:00-06:00 Europe/Berlin")
    dues = due_times(t, utc(2026, 3, 20), 2)
    assert dues == [utc(2026, 3, 22, 4), utc(2026, 3, 29, 3)]
    assert {d.astimezone(BERLIN).hour for d in dues} == {5}


# --- cron within a window --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("after", "at", "window_end"),
    [
        (utc(2026, 11, 27, 1), utc(2026, 11, 27, 2), utc(2026, 11, 27, 3)),
        (utc(2026, 11, 27, 2), utc(2026, 11, 27, 2, 30), utc(2026, 11, 27, 3)),
        # 03:00 matches the cron but the window has closed (its end is excluded).
        (utc(2026, 11, 27, 2, 30), utc(2026, 11, 28, 2), utc(2026, 11, 28, 3)),
        (utc(2026, 11, 27, 12), utc(2026, 11, 28, 2), utc(2026, 11, 28, 3)),
    ],
)
def test_a_cron_with_a_window_is_due_only_inside_the_window(
    after: datetime, at: datetime, window_end: datetime
) -> None:
    t = timing(cron="*/30 * * * *", window="02:00-03:00 UTC")
    assert t.next_due(after) == Due(at, window_end)


def test_a_cron_with_a_window_only_counts_matches_on_the_window_day() -> None:
    # Every day at 04:00, but only inside Sunday's window: Sundays at 04:00.
    t = timing(cron="0 4 * * *", window="Sunday 03:00-05:00 UTC")
    assert due_times(t, utc(2026, 11, 27), 2) == [utc(2026, 11, 29, 4), utc(2026, 12, 6, 4)]


def test_a_rare_cron_inside_a_rare_window_is_found() -> None:
    # The 1st of the month at 04:00, inside Sunday's window: 2026-11-01 is the next such Sunday after March.
    t = timing(cron="0 4 1 * *", window="Sunday 03:00-05:00 UTC")
    assert t.next_due(utc(2026, 3, 2)) == Due(utc(2026, 11, 1, 4), utc(2026, 11, 1, 5))


@pytest.mark.parametrize(
    ("cron", "window"),
    [
        ("0 12 * * *", "02:00-03:00 UTC"),
        ("0 4 * * 1", "Sunday 03:00-05:00 UTC"),
        ("0 4 29 2 *", "first Sunday 03:00-05:00 UTC"),
    ],
)
def test_a_cron_that_never_falls_inside_its_window_is_an_error(cron: str, window: str) -> None:
    t = timing(cron=cron, window=window)
    with pytest.raises(ValueError, match="never falls inside window"):
        t.next_due(utc(2026, 1, 1))


# --- retries --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("retry", "attempt", "delay"),
    [
        ({}, 1, timedelta(seconds=30)),
        ({}, 2, timedelta(seconds=60)),
        ({}, 3, timedelta(seconds=120)),
        ({"backoff": "10s", "factor": 3}, 3, timedelta(seconds=90)),
        ({"backoff": "10s", "factor": 1}, 5, timedelta(seconds=10)),
        ({"backoff": "1m", "factor": 2, "max_backoff": "5m"}, 3, timedelta(minutes=4)),
        ({"backoff": "1m", "factor": 2, "max_backoff": "5m"}, 4, timedelta(minutes=5)),
        ({"backoff": "1m", "factor": 2, "max_backoff": "5m"}, 20, timedelta(minutes=5)),
        ({}, 20, timedelta(minutes=30)),
    ],
)
def test_retry_backoff_grows_by_its_factor_up_to_its_maximum(
    retry: dict[str, Any], attempt: int, delay: timedelta
) -> None:
    assert Retry.model_validate(retry).delay(attempt) == delay


# --- validation ------------------------------------------------------------------------------------------


def test_a_schedule_has_defaults_for_everything_but_its_kind() -> None:
    schedule = Schedule.model_validate({"every": "1m"})
    assert schedule.timezone == "UTC"
    assert schedule.window is None
    assert schedule.misfire is Misfire.run_once
    assert schedule.misfire_grace == timedelta(minutes=1)
    assert Schedule.model_validate({"cadence": "daily", "window": "02:00-03:00 UTC"}).cadence is Cadence.daily


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({}, "needs exactly one of 'cron', 'every' or 'cadence'"),
        ({"timezone": "Europe/Berlin"}, "needs exactly one of"),
        ({"cron": "0 2 * * *", "every": "1h"}, r"\(got cron and every\)"),
        ({"every": "1h", "cadence": "daily", "window": "02:00-03:00"}, r"\(got every and cadence\)"),
        ({"cadence": "daily"}, "a daily cadence needs a window, for example window: '02:00-03:00 UTC'"),
        ({"cadence": "quarterly"}, "a quarterly cadence needs a window"),
        (
            {"cadence": "weekly", "window": "02:00-03:00 UTC"},
            "a weekly cadence needs a weekly window like 'Sunday 03:00-05:00 UTC', not '02:00-03:00 UTC'",
        ),
        ({"cadence": "daily", "window": "Sunday 03:00-05:00 UTC"}, "a daily cadence needs a daily window"),
        (
            {"cadence": "monthly", "window": "Sunday 03:00-05:00 UTC"},
            "a monthly cadence needs a monthly window",
        ),
        ({"cadence": "quarterly", "window": "02:00-03:00 UTC"}, "a quarterly cadence needs a monthly window"),
        ({"cadence": "weekly", "window": "first Sunday 05:00-08:00 UTC"}, "needs a weekly window"),
        ({"cadence": "hourly", "window": "02:00-03:00 UTC"}, "cadence"),
        ({"cron": "61 * * * *"}, "'61 \\* \\* \\* \\*' is not a cron expression"),
        ({"cron": "every day"}, "is not a cron expression"),
        ({"cron": "* * *"}, "is not a cron expression"),
        ({"cron": "0 2 * * *", "timezone": "Europe/Atlantis"}, "unknown time zone 'Europe/Atlantis'"),
        ({"cron": "0 2 * * *", "timezone": "CEST"}, "unknown time zone 'CEST'"),
        ({"every": "500ms"}, "'every' must be at least 1s"),
        ({"every": 0}, "'every' must be at least 1s"),
        ({"every": "soon"}, "'soon' is not a duration"),
        ({"every": -5}, "cannot be negative"),
        ({"cadence": "daily", "window": "03:00-02:00 UTC"}, "not after it starts"),
        ({"cron": "0 2 * * *", "misfire": "catch_up"}, "misfire"),
        ({"cron": "0 2 * * *", "misfire_grace": "a while"}, "is not a duration"),
        ({"cron": "0 2 * * *", "jitter": "5m"}, "jitter"),
    ],
)
def test_an_invalid_schedule_is_refused_with_the_reason(fields: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        Schedule.model_validate(fields)
