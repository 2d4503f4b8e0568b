"""Run values on a regular grid: what both models need (Holt-Winters cannot take gaps)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt


@dataclass
class Grid:
    start: datetime  # the first step's start; step i begins at start + i * step
    step: timedelta
    values: npt.NDArray[np.float64]
    measured: int  # steps with at least one run value; the others are interpolated

    def at(self, i: float) -> datetime:
        return self.start + self.step * i


def resample(points: list[tuple[datetime, float]], step: timedelta) -> Grid:
    """The mean of the values in each step (steps aligned to the epoch, so a daily step starts at
    midnight UTC); a step without a run is interpolated between its neighbours."""
    import numpy as np

    seconds = step.total_seconds()
    stamps = np.array([p[0].timestamp() for p in points], dtype=np.float64)
    values = np.array([p[1] for p in points], dtype=np.float64)
    origin = np.floor(stamps.min() / seconds) * seconds
    index = ((stamps - origin) // seconds).astype(np.int64)
    sums = np.bincount(index, weights=values)
    counts = np.bincount(index)
    seen = counts > 0
    grid = np.empty(len(counts), dtype=np.float64)
    grid[seen] = sums[seen] / counts[seen]
    if not seen.all():
        steps = np.arange(len(counts))
        grid[~seen] = np.interp(steps[~seen], steps[seen], grid[seen])
    start = datetime.fromtimestamp(float(origin), UTC)
    return Grid(start, step, grid, int(seen.sum()))
