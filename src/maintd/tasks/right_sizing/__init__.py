"""``right-sizing``: CPU and memory requests/limits against measured use, quota usage against hard
limits, and disk and database growth against their limits. Read-only: it recommends.

Each run samples the metrics API (metrics.k8s.io PodMetrics) and keeps the samples in its memo, so
the 95th percentile grows out of a week of runs; a container is judged once it has
``min_samples``. kubernetes_asyncio is imported only when a run starts (``run.py``).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Self

from pydantic import Field, model_validator

from maintd.checks.base import Kind, lazy
from maintd.checks.kubernetes.access import ClusterAccess
from maintd.plan.base import StrictModel
from maintd.plan.types import Duration

__all__ = ["KIND", "Growth", "RightSizingConfig"]


class Growth(StrictModel):
    """Disk and database size series of maintd's own runs, projected by the capacity room."""

    database: str | None = Field(
        default=None,
        description="maintd's database URL to read the runs from; default: MAINTD_DATABASE_URL, else "
        "maintd's default SQLite file",
    )
    task: str | None = Field(default=None, description="only this task's series (a disk or postgres check)")
    metric: str | None = Field(
        default=None, description="only this metric, e.g. used_bytes or database_bytes"
    )
    history: Duration = Field(default=timedelta(days=90), description="how far back the runs are read")
    warn_within: Duration = Field(
        default=timedelta(days=90), description="warning when a series is projected full within this"
    )
    crit_within: Duration = Field(
        default=timedelta(days=14), description="critical when a series is projected full within this"
    )


class RightSizingConfig(StrictModel):
    kubernetes: ClusterAccess | None = Field(
        default=None, description="how to reach the cluster (as the kubernetes check); null: no cluster part"
    )
    namespaces: list[str] = Field(default=[], description="namespaces judged; empty: all")
    headroom: float = Field(
        default=1.3, ge=1.0, le=10.0, description="a request above p95 use x headroom is over-provisioned"
    )
    near_limit: float = Field(
        default=0.9,
        gt=0.0,
        le=1.0,
        description="p95 (or peak memory) use at this share of the limit or more is under-provisioned",
    )
    min_samples: int = Field(default=6, ge=1, description="samples a container needs before it is judged")
    keep_samples: int = Field(default=2016, ge=1, description="samples kept per container (a week at 5 min)")
    quota_warn: float = Field(
        default=0.8, gt=0.0, le=1.0, description="warning at this share of a hard quota"
    )
    quota_crit: float = Field(
        default=0.95, gt=0.0, le=1.0, description="critical at this share of a hard quota"
    )
    growth: Growth | None = Field(
        default=None, description="disk and database sizes vs growth from maintd's run history; null: none"
    )
    timeout: Duration = Field(
        default=timedelta(seconds=20), description="each API call is given up after this"
    )

    @model_validator(mode="after")
    def _something(self) -> Self:
        if self.kubernetes is None and self.growth is None:
            raise ValueError("give kubernetes, growth or both: there is nothing to right-size")
        if self.quota_warn > self.quota_crit:
            raise ValueError("quota_warn must not be above quota_crit")
        return self


KIND = Kind(
    name="right-sizing",
    config=RightSizingConfig,
    build=lazy("maintd.tasks.right_sizing.run"),
    summary="right-sizing: requests/limits vs measured use, quota usage, disk and database growth",
)
