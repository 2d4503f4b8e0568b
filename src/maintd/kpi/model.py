"""A KPI figure and a report of them over a period."""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime
from typing import Literal

from pydantic import BaseModel


class Figure(BaseModel):
    name: str  # stable key: "incidents.mttr.P1", "seed.preventive_share"
    group: str  # availability, incidents, maintenance, delivery, seed
    title: str
    value: float | None  # None: nothing to compute it from in the period (see ``how``)
    unit: Literal["%", "s", "count", "per day", "x"]  # x: a ratio (an SLO's burn rate)
    how: str  # the inputs and the formula, with their numbers
    samples: int
    target: float | None = None
    better: Literal["higher", "lower"] | None = None  # which side of ``target`` is good

    @property
    def met(self) -> bool | None:
        if self.target is None or self.value is None or self.better is None:
            return None
        return self.value >= self.target if self.better == "higher" else self.value <= self.target


class Report(BaseModel):
    start: datetime
    end: datetime
    computed_at: datetime
    figures: list[Figure]

    def get(self, name: str) -> Figure:
        for figure in self.figures:
            if figure.name == name:
                return figure
        raise KeyError(name)


def share(part: int, whole: int) -> float | None:
    """``part`` of ``whole`` in percent, or None when there is nothing to divide."""
    return round(100.0 * part / whole, 3) if whole else None


def nearest_rank(values: Sequence[float], p: float) -> float | None:
    """The ``p``-quantile by nearest rank (the smallest value with at least p of the values at or
    below it): always one of the values, so a reader can check it by hand."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p * len(ordered)) - 1)]


def mean(values: Sequence[float]) -> float | None:
    return round(sum(values) / len(values), 3) if values else None
