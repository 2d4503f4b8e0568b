"""Capacity forecasts from run rows made by hand, each checked against a figure worked out by hand."""

from __future__ import annotations

import itertools
import math
from datetime import datetime, timedelta
from typing import Any

import pytest

from maintd.capacity.forecast import Settings, forecast
from maintd.capacity.model import SeriesKey
from maintd.capacity.resample import resample
from maintd.capacity.review import review
from maintd.capacity.series import Series
from maintd.store.db import Store
from maintd.store.models import RunRow
from tests.conftest import T0

DAY = timedelta(days=1)
GIB = 2.0**30
_ids = itertools.count()


def a_run(at: datetime, metrics: dict[str, float], **fields: Any) -> RunRow:
    values: dict[str, Any] = {"task": "disk", "target": "db1", "kind": "disk", "dry_run": False}
    values.update(fields)
    return RunRow(
        id=f"c{next(_ids)}", trigger="schedule", attempt=1, scheduled_for=at, started_at=at,
        finished_at=at, state="finished", status="ok", in_window=True, preventive=True, output="",
        owner="test", duration_ms=1.0, metrics=metrics, **values,
    )  # fmt: skip


def insert(store: Store, rows: list[RunRow]) -> None:
    with store.write() as s:
        s.add_all(rows)


def daily(days: int, metrics: Any, **fields: Any) -> list[RunRow]:
    """One run a day for ``days`` days ending the day before T0: ``metrics(i)`` for day i."""
    start = T0 - days * DAY
    return [a_run(start + i * DAY, metrics(i), **fields) for i in range(days)]


def disk(i: int) -> dict[str, float]:
    """100 GiB used growing 1 GiB a day (with a tiny wobble) on a 300 GiB volume."""
    used = (100 + i + (0.02 if i % 2 else -0.02)) * GIB
    return {"used_bytes:/": used, "free_bytes:/": 300 * GIB - used, "connect_seconds": 0.01}


def test_linear_growth_chooses_the_linear_model_and_finds_the_day_the_disk_is_full(store):
    insert(store, daily(60, disk))
    with store.read() as s:
        report = review(s, now=T0)
    [f] = report.forecasts  # connect_seconds is not a capacity metric
    assert (f.series.task, f.series.target, f.series.metric) == ("disk", "db1", "used_bytes:/")
    assert f.chosen == "linear" and f.points == 60
    assert {fit.model for fit in f.fits} == {"linear", "holt-winters"}
    assert all(fit.mae is not None and fit.rmse is not None for fit in f.fits)
    assert math.isclose(f.growth_per_day or 0, GIB, rel_tol=1e-3)
    assert math.isclose(f.growth_per_month or 0, GIB * 365 / 12, rel_tol=1e-3)
    # by hand: 100 GiB + 1 GiB/day from day 0 reaches 300 GiB on day 200
    full = T0 - 60 * DAY + 200 * DAY
    ex = f.exhaustion
    assert ex is not None and ex.at is not None and ex.earliest_at is not None
    assert abs((ex.at - full).total_seconds()) < 0.5 * 86400
    assert ex.limit == 300 * GIB and ex.limit_source == "used_bytes:/ + free_bytes:/"
    assert ex.earliest_at <= ex.at
    three = f.projections[0]
    assert (three.months, three.days) == (3, 91)
    expected = (100 + 59 + 91) * GIB  # the last point is day 59
    assert math.isclose(three.value, expected, rel_tol=1e-3)
    assert three.lower < three.value < three.upper
    [rec] = report.recommendations
    assert rec.urgency == "6 months" and "grow the volume" in rec.text  # 141 days after the last point


def test_a_weekly_pattern_with_a_trend_chooses_holt_winters_by_its_holdout_error(sqlite_store):
    def connections(i: int) -> dict[str, float]:
        weekday = (0, 30, 34, 32, 30, 20, -10)[i % 7]  # busy weekdays, quiet weekends
        return {"connections": 40 + 0.3 * i + weekday, "max_connections": 200.0}

    insert(sqlite_store, daily(70, connections, task="pg", target="main", kind="postgres"))
    with sqlite_store.read() as s:
        [f] = review(s, now=T0).forecasts
    linear, holt = f.fits
    assert f.chosen == "holt-winters", f.chosen_why
    assert holt.mae is not None and linear.mae is not None and holt.mae < 0.5 * linear.mae
    assert "season of 7 steps" in holt.how and "simulated" in f.interval
    assert f.exhaustion is not None and f.exhaustion.limit == 200.0
    assert all(p.lower <= p.value <= p.upper for p in f.projections)
    assert math.isclose(f.growth_per_day or 0, 0.3, rel_tol=0.1)


def test_too_little_history_says_how_much_there_is_and_how_much_is_needed(sqlite_store):
    insert(sqlite_store, daily(5, disk))
    with sqlite_store.read() as s:
        [f] = review(s, now=T0).forecasts
    assert f.note == "not enough data (5 points, need 14)"
    assert f.projections == [] and f.exhaustion is None and f.chosen is None


def test_a_constant_series_never_reaches_its_limit_and_raises_nothing(sqlite_store):
    memory = {"used_memory": 1 * GIB, "maxmemory": 4 * GIB}
    insert(sqlite_store, daily(30, lambda i: memory, task="redis", target="cache", kind="redis"))
    with sqlite_store.read() as s:
        report = review(s, now=T0)
    [f] = report.forecasts
    assert f.growth_per_day is not None and abs(f.growth_per_day) < 1e-6
    assert f.exhaustion is not None and f.exhaustion.limit == 4 * GIB
    assert f.exhaustion.at is None and f.exhaustion.earliest_at is None
    assert report.recommendations == []


def test_a_limit_crossed_within_three_months_raises_a_recommendation(sqlite_store):
    insert(sqlite_store, daily(30, lambda i: {"used_percent": 50 + 0.5 * i}))  # 64.5 % now, 100 % in 71 d
    with sqlite_store.read() as s:
        report = review(s, now=T0)
    [rec] = report.recommendations
    assert rec.urgency == "3 months" and rec.series.metric == "used_percent"
    ex = report.forecasts[0].exhaustion
    assert ex is not None and ex.days is not None and abs(ex.days - 71) < 1
    assert "reaches its limit 100.0 %" in rec.text


def test_a_configured_limit_overrides_and_any_metric_can_be_asked_for(sqlite_store):
    insert(sqlite_store, daily(30, lambda i: {"queue_depth": 10.0 + i}, task="q", kind="command"))
    insert(sqlite_store, daily(30, lambda i: {"queue_depth": 99.0}, task="q", dry_run=True))
    insert(sqlite_store, daily(30, lambda i: {"used_percent": 1.0, "json:queue_depth": 5.0}, kind="http"))
    with sqlite_store.read() as s:
        assert review(s, now=T0).forecasts == []  # not capacity metrics unless asked for, nor probes' runs
        [probe] = review(s, now=T0, metric="json:queue_depth").forecasts
        assert probe.raw_points == 30
        [f] = review(s, now=T0, metric="queue_depth", limit=50.0).forecasts
    assert f.raw_points == 30  # the dry runs are not measurements
    assert f.exhaustion is not None and f.exhaustion.limit_source == "configured"
    assert f.exhaustion.days is not None and abs(f.exhaustion.days - 11) < 1  # 39 now, +1 a day


def test_a_perfdata_value_with_a_maximum_is_a_series_limited_by_it(sqlite_store):
    insert(sqlite_store, daily(20, lambda i: {"db_size": 10.0 + i, "db_size.max": 100.0}, kind="command"))
    with sqlite_store.read() as s:
        [f] = review(s, now=T0).forecasts
    assert f.series.metric == "db_size" and f.exhaustion is not None
    assert (f.exhaustion.limit, f.exhaustion.limit_source) == (100.0, "db_size.max")


def test_resampling_averages_a_day_and_interpolates_a_missing_one():
    points = [(T0, 1.0), (T0 + timedelta(hours=5), 3.0), (T0 + 2 * DAY, 6.0)]
    grid = resample(points, DAY)
    assert list(grid.values) == [2.0, 4.0, 6.0] and grid.measured == 2
    assert grid.start == T0.replace(hour=0)


def test_a_bad_history_is_refused(sqlite_store):
    with sqlite_store.read() as s:
        for bad in (timedelta(0), timedelta(days=5000)):
            try:
                review(s, now=T0, history=bad)
            except ValueError as exc:
                assert "history must be positive" in str(exc)
            else:
                raise AssertionError(f"history {bad} accepted")


AWKWARD = {
    "all zero": [0.0] * 20,
    "a step": [0.0] * 10 + [100.0] * 10,
    "falling": [-3.0 * i for i in range(20)],
    "huge": [1e15 + 1e12 * i for i in range(30)],
    "exact line, two seasons in training": [float(i) for i in range(18)],
}


@pytest.mark.filterwarnings("error")
@pytest.mark.parametrize("values", AWKWARD.values(), ids=AWKWARD.keys())
def test_awkward_series_are_projected_without_errors_or_warnings(values):
    points = [(T0 + i * DAY, v) for i, v in enumerate(values)]
    f = forecast(Series(SeriesKey(task="t", target="x", metric="m"), "count", points, 50.0, "configured"),
                 Settings())  # fmt: skip
    assert f.chosen is not None and [p.months for p in f.projections] == [3, 6, 12]
    assert all(math.isfinite(v) for p in f.projections for v in (p.value, p.lower, p.upper))
    assert all(p.lower <= p.value <= p.upper for p in f.projections)
