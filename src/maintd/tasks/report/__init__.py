"""``report``: the quarterly KPI report, the monthly review or the monthly system audit on the
plan's schedule (see docs/reports.md), written as NAME.html, NAME.md and NAME-charts/ in a folder.

Reads maintd's own records through the shared store seam (maintd.tasks.store_access); the
report room (and numpy/statsmodels, for the capacity parts) is imported only when a run starts.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from maintd.checks.base import Kind, lazy
from maintd.plan.base import StrictModel

__all__ = ["KIND", "ReportConfig"]


class ReportConfig(StrictModel):
    report: Literal["kpi", "monthly-review", "monthly-audit"] = Field(
        description="which report: kpi (quarterly), monthly-review or monthly-audit"
    )
    out: str = Field(description="the folder NAME.html, NAME.md and NAME-charts/ are written to")
    period: str = Field(
        default="previous",
        description="previous (the last complete month, or quarter for kpi, before the run), current, "
        "a month like 2026-10 or a quarter like 2026-Q3",
    )
    database: str | None = Field(
        default=None,
        description="maintd's database URL to read from; default: MAINTD_DATABASE_URL, else maintd's "
        "default SQLite file (set it when `maintd serve --db` was given another)",
    )

    @field_validator("period")
    @classmethod
    def _period(cls, value: str) -> str:
        from datetime import UTC, datetime

        from maintd.reports.period import parse

        parse(value, "month", datetime(2000, 1, 1, tzinfo=UTC))  # the form only; ValueError names it
        return value


KIND = Kind(
    name="report",
    config=ReportConfig,
    build=lazy("maintd.tasks.report.run"),
    summary="KPI report, monthly review or monthly audit (HTML with charts, Markdown) on schedule",
    changes=lambda config: True,
)
