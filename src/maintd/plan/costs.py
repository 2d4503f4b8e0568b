"""Plan sections for the monthly audit (maintd.reports): ``costs`` (the cost model behind the
seed's maintenance ROI) and ``compliance`` (named checks the audit verifies).

::

    costs:
      currency: EUR
      staff_hourly_rate: 80            # per hour of staff time
      tool_licences_per_month: 400
      infrastructure_overhead_per_month: 250
      downtime_cost_per_minute: 50
      cost_per_incident: 500
      baseline_availability: 99.5      # assumption: % availability without this maintenance
      baseline_incidents_per_month: 10 # assumption: incidents a month without it
    compliance:
      - name: backups-verified
        task: nightly-backup           # its latest run on every target must be ok
      - name: preventive-share
        kpi: seed.preventive_share     # this KPI over the audited month ...
        min: 80                        # ... must be at least 80 (or at most ``max``)

Money figures are in the one ``currency``; monthly amounts are prorated to a report's period.
"""

from __future__ import annotations

from typing import Self

from pydantic import Field, model_validator

from maintd.plan.base import StrictModel


class CostModel(StrictModel):
    currency: str = Field(default="EUR", max_length=8, description="the unit of every amount below")
    staff_hourly_rate: float = Field(default=0.0, ge=0, description="cost of one hour of staff time")
    tool_licences_per_month: float = Field(default=0.0, ge=0, description="tool licences, per month")
    infrastructure_overhead_per_month: float = Field(
        default=0.0, ge=0, description="infrastructure overhead of maintenance, per month"
    )
    downtime_cost_per_minute: float = Field(default=0.0, ge=0, description="what a minute of downtime costs")
    cost_per_incident: float = Field(default=0.0, ge=0, description="what one incident costs")
    baseline_availability: float = Field(
        default=99.0, ge=0, le=100,
        description="assumption: the availability % services would have without this maintenance; "
        "downtime prevented is measured availability above it",
    )  # fmt: skip
    baseline_incidents_per_month: float = Field(
        default=0.0, ge=0,
        description="assumption: incidents a month without this maintenance; incidents prevented is "
        "this (prorated) minus the incidents opened",
    )  # fmt: skip


class ComplianceCheck(StrictModel):
    name: str = Field(min_length=1, max_length=63, description="the check's name in the audit")
    description: str = Field(default="", description="what the check ensures, shown in the audit")
    task: str | None = Field(
        default=None, description="a task whose latest real run on every target must be ok"
    )
    kpi: str | None = Field(default=None, description="a KPI name (see docs/kpis.md) to hold to min/max")
    min: float | None = Field(default=None, description="with kpi: the KPI must be at least this")
    max: float | None = Field(default=None, description="with kpi: the KPI must be at most this")

    @model_validator(mode="after")
    def _one_subject(self) -> Self:
        if (self.task is None) == (self.kpi is None):
            raise ValueError("a compliance check names exactly one of task or kpi")
        if self.kpi is not None and self.min is None and self.max is None:
            raise ValueError("a kpi compliance check needs min or max")
        if self.task is not None and (self.min is not None or self.max is not None):
            raise ValueError("min and max go with kpi, not task")
        return self
