"""One series' forecast: growth, both models' holdout errors, the chosen model's projections at
3, 6 and 12 months, and when it reaches its limit."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from maintd.capacity.model import HORIZONS, Exhaustion, Fit, Forecast, Projection
from maintd.capacity.models import (
    HoltWinters,
    Path,
    errors,
    hw_holdout,
    hw_path,
    hw_train,
    linear_fit,
    linear_holdout,
    linear_path,
)
from maintd.capacity.resample import Grid, resample
from maintd.capacity.series import Series
from maintd.capacity.threads import single_blas_thread

if TYPE_CHECKING:
    from maintd.capacity.models import Array

MONTH_DAYS = 365 / 12


@dataclass(frozen=True)
class Settings:
    step: timedelta = timedelta(days=1)
    min_points: int = 14  # two weeks of daily points: less says little about a trend
    holdout: float = 0.2  # the last 20 % of the points judge the models
    season_days: float = 7.0  # weekly: business load repeats by weekday
    damped: bool = False
    margin: float = 0.9  # Holt-Winters must beat the linear model's MAE by 10 % to be chosen

    @property
    def step_days(self) -> float:
        return self.step.total_seconds() / 86400


def forecast(series: Series, settings: Settings) -> Forecast:
    single_blas_thread()  # before numpy is first imported (see threads.py)
    grid = resample(series.points, settings.step)
    values = grid.values
    result = Forecast(
        series=series.key,
        unit=series.unit,
        points=len(values),
        raw_points=len(series.points),
        step_days=settings.step_days,
        first_at=grid.start,
        last_at=grid.at(len(values) - 1),
        last_value=float(values[-1]),
        history=[(grid.at(i), float(v)) for i, v in enumerate(values)],
    )
    if len(values) < settings.min_points:
        result.note = f"not enough data ({len(values)} points, need {settings.min_points})"
        return result
    _growth(result, values, settings)
    trained, spec = _choose(result, values, settings)
    horizon = math.ceil(HORIZONS[-1][1] / settings.step_days)
    path = linear_path(values, horizon) if trained is None else hw_path(values, trained, horizon, spec)
    _project(result, grid, path, settings)
    if series.limit is not None:
        result.exhaustion = _exhaustion(result, grid, path, series.limit, series.limit_source)
    return result


def _growth(result: Forecast, values: Array, settings: Settings) -> None:
    _, slope = linear_fit(values)
    result.growth_per_day = slope / settings.step_days
    result.growth_per_month = result.growth_per_day * MONTH_DAYS
    result.growth_how = (
        f"slope of the least-squares line through all {len(values)} points, per day; "
        f"a month is {MONTH_DAYS:.2f} days"
    )


def _season(train: int, settings: Settings) -> int:
    steps = round(settings.season_days / settings.step_days)
    return steps if steps >= 2 and train >= 2 * steps else 0  # two full seasons to estimate one


def _choose(result: Forecast, values: Array, settings: Settings) -> tuple[Any, HoltWinters]:
    """Fills in both fits and the choice; gives the trained Holt-Winters model if it was chosen."""
    held = max(1, round(len(values) * settings.holdout))
    train, test = values[:-held], values[-held:]
    spec = HoltWinters(settings.damped, _season(len(train), settings))
    where = f"trained on the first {len(train)} points, judged on the last {held}"
    mae, rmse = errors(test, linear_holdout(train, held))
    linear = Fit(model="linear", mae=mae, rmse=rmse, how=f"least-squares line, {where}")
    trained = None
    try:
        trained = hw_train(train, spec)
        hw_mae, hw_rmse = errors(test, hw_holdout(trained, held))
        holt = Fit(model="holt-winters", mae=hw_mae, rmse=hw_rmse, how=f"{spec.describe()}, {where}")
    except (ValueError, FloatingPointError, ArithmeticError) as exc:
        holt = Fit(model="holt-winters", mae=None, rmse=None, how=f"{spec.describe()} failed: {exc}")
    result.fits = [linear, holt]
    # the simpler model wins ties; the absolute term keeps float noise on a flat series from deciding
    tie = 1e-9 * max(1.0, float(abs(values).max()))
    if holt.mae is not None and math.isfinite(holt.mae) and holt.mae < settings.margin * mae - tie:
        result.chosen = "holt-winters"
        result.chosen_why = f"holdout MAE {holt.mae:.4g} < {settings.margin:g} x linear's {mae:.4g}"
        result.interval = "95 % from 200 simulated paths of the fitted model (additive normal errors)"
        return trained, spec
    else:
        result.chosen = "linear"
        result.chosen_why = (
            f"holdout MAE {mae:.4g}; Holt-Winters' "
            + (f"{holt.mae:.4g}" if holt.mae is not None else "failed")
            + f" is not {100 * (1 - settings.margin):.0f} % better"
        )
        result.interval = "95 % prediction interval of the least-squares line (statsmodels OLS)"
    return None, spec


def _project(result: Forecast, grid: Grid, path: Path, settings: Settings) -> None:
    last = len(grid.values) - 1
    result.path = [
        (grid.at(last + k + 1), float(path.value[k]), float(path.lower[k]), float(path.upper[k]))
        for k in range(len(path.value))
    ]
    for months, days in HORIZONS:
        k = min(len(path.value), max(1, round(days / settings.step_days))) - 1
        result.projections.append(
            Projection(
                months=months,
                days=days,
                at=grid.at(last + k + 1),
                value=float(path.value[k]),
                lower=float(path.lower[k]),
                upper=float(path.upper[k]),
            )
        )


def _crossing(start: float, values: Array, limit: float) -> float | None:
    """Steps after the last point until ``values`` (one per step) first reach ``limit``, linearly
    interpolated within the step; None if they never do."""
    before = start
    for k, value in enumerate(values):
        if value >= limit:
            share = (limit - before) / (value - before) if value > before else 1.0
            return k + min(max(share, 0.0), 1.0)
        before = float(value)
    return None


def _exhaustion(result: Forecast, grid: Grid, path: Path, limit: float, source: str) -> Exhaustion:
    last = len(grid.values) - 1
    step_days = result.step_days

    def when(steps: float | None) -> tuple[datetime | None, float | None]:
        return (None, None) if steps is None else (grid.at(last + steps), steps * step_days)

    if result.last_value >= limit:
        now = grid.at(last)
        how = f"the last value {result.last_value:.6g} is already at or over the limit {limit:.6g}"
        return Exhaustion(limit=limit, limit_source=source, at=now, days=0.0, earliest_at=now,
                          earliest_days=0.0, how=how)  # fmt: skip
    at, days = when(_crossing(result.last_value, path.value, limit))
    early_at, early_days = when(_crossing(result.last_value, path.upper, limit))
    horizon = f"{HORIZONS[-1][0]} months"
    how = (
        f"first step where the {result.chosen} projection reaches {limit:.6g}"
        + ("" if at is not None else f": not within {horizon}")
        + "; earliest: where the interval's upper bound does"
        + ("" if early_at is not None else f": not within {horizon}")
    )
    return Exhaustion(limit=limit, limit_source=source, at=at, days=days, earliest_at=early_at,
                      earliest_days=early_days, how=how)  # fmt: skip
