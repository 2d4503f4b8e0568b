"""``capacity-review``: the capacity report on the plan's schedule (see docs/capacity.md).

Reads maintd's own runs (the same review as ``maintd capacity``), writes capacity.html and
capacity.md into a folder, and is warning or critical when a series is projected to reach its
limit soon. numpy and statsmodels are imported only when a run starts (``run.py``).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Self

from pydantic import Field, model_validator

from maintd.checks.base import Kind, lazy
from maintd.plan.base import StrictModel
from maintd.plan.types import Duration

__all__ = ["KIND", "CapacityReviewConfig"]


class CapacityReviewConfig(StrictModel):
    out: str = Field(description="the folder capacity.html, capacity.md and capacity-charts/ are written to")
    database: str | None = Field(
        default=None,
        description="maintd's database URL to read the runs from; default: MAINTD_DATABASE_URL, else "
        "maintd's default SQLite file (set it when `maintd serve --db` was given another)",
    )
    history: Duration = Field(default=timedelta(days=365), description="how far back the runs are read")
    task: str | None = Field(default=None, description="only this task's series")
    series_target: str | None = Field(default=None, description="only this target's series")
    metric: str | None = Field(default=None, description="only this metric (any metric a run recorded)")
    limit: float | None = Field(default=None, description="the limit for every selected series")
    warn_within: Duration = Field(
        default=timedelta(days=183), description="warning when a series reaches its limit within this"
    )
    crit_within: Duration = Field(
        default=timedelta(days=91), description="critical when a series reaches its limit within this"
    )

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.crit_within > self.warn_within:
            raise ValueError("crit_within must not be longer than warn_within")
        return self


KIND = Kind(
    name="capacity-review",
    config=CapacityReviewConfig,
    build=lazy("maintd.tasks.capacity_review.run"),
    summary="capacity report (HTML with charts, Markdown): growth, projections, time to each limit",
    changes=lambda config: True,
)
