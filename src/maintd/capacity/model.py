"""What a capacity review reports: one forecast per series, and the recommendations they raise."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel

Unit = Literal["bytes", "%", "count"]
ModelName = Literal["linear", "holt-winters"]
HORIZONS = ((3, 91), (6, 183), (12, 365))  # (months, days): a month is 365/12 days, rounded


class SeriesKey(BaseModel):
    task: str
    target: str
    metric: str

    def label(self) -> str:
        return f"{self.task}/{self.target}/{self.metric}"


class Fit(BaseModel):
    """One model's fit on the training part and its error on the held-out tail."""

    model: ModelName
    mae: float | None  # None: the model could not be fitted (``how`` says why)
    rmse: float | None
    how: str


class Projection(BaseModel):
    months: int
    days: int
    at: datetime
    value: float
    lower: float  # the prediction interval (``Forecast.interval`` says which and how)
    upper: float


class Exhaustion(BaseModel):
    """When the projection, and its upper bound, reach the limit (None: not within the horizon)."""

    limit: float
    limit_source: str  # "configured" or the metric the limit was read from
    at: datetime | None
    days: float | None
    earliest_at: datetime | None  # the upper bound of the interval crosses first
    earliest_days: float | None
    how: str


class Recommendation(BaseModel):
    series: SeriesKey
    urgency: Literal["now", "3 months", "6 months", "12 months"]
    text: str


class Forecast(BaseModel):
    series: SeriesKey
    unit: Unit
    points: int  # regular points after resampling (interpolated gaps included)
    raw_points: int  # the run values they came from
    step_days: float
    first_at: datetime
    last_at: datetime
    last_value: float
    history: list[tuple[datetime, float]]  # the resampled series, for charts
    growth_per_day: float | None = None
    growth_per_month: float | None = None
    growth_how: str = ""
    fits: list[Fit] = []
    chosen: ModelName | None = None
    chosen_why: str = ""
    interval: str = ""
    projections: list[Projection] = []
    path: list[tuple[datetime, float, float, float]] = []  # (at, value, lower, upper) to 12 months
    exhaustion: Exhaustion | None = None
    note: str = ""  # why there is no projection ("not enough data (5 points, need 14)")


class CapacityReport(BaseModel):
    computed_at: datetime
    since: datetime
    step_days: float
    forecasts: list[Forecast]
    recommendations: list[Recommendation]
