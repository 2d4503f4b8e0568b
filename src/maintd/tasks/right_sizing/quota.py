"""ResourceQuota usage against hard limits, and disk and database growth from the capacity room."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from maintd.capacity.review import review
from maintd.store.db import Store
from maintd.tasks.right_sizing import Growth
from maintd.tasks.right_sizing.kube import quantity


@dataclass(frozen=True)
class QuotaUse:
    namespace: str
    quota: str
    resource: str
    used: float
    hard: float

    @property
    def share(self) -> float:
        return self.used / self.hard if self.hard else (1.0 if self.used else 0.0)

    def line(self, used: str, hard: str) -> str:
        return f"quota {self.namespace}/{self.quota} {self.resource}: {used} of {hard} ({self.share:.0%})"


def quota_uses(quotas: list[dict[str, Any]]) -> list[tuple[QuotaUse, str, str]]:
    """Each hard limit of each quota with its use (as the API wrote them, for the output)."""
    out: list[tuple[QuotaUse, str, str]] = []
    for quota in quotas:
        meta, status = quota.get("metadata") or {}, quota.get("status") or {}
        hard, used = status.get("hard") or {}, status.get("used") or {}
        for resource in sorted(hard):
            try:
                use = QuotaUse(str(meta.get("namespace")), str(meta.get("name")), resource,
                               quantity(used.get(resource, "0")), quantity(hard[resource]))  # fmt: skip
            except ValueError:
                continue
            out.append((use, str(used.get(resource, "0")), str(hard[resource])))
    return out


@dataclass(frozen=True)
class GrowthLine:
    series: str
    days: float | None  # to the limit (the upper bound's, when the projection stays under it)
    text: str


def growth(url: str, config: Growth, now: datetime) -> list[GrowthLine]:
    """The capacity room's projections of the selected series: time to full for each. Blocking."""
    store = Store(url)
    try:
        with store.read() as session:
            report = review(session, now=now, history=config.history, task=config.task, metric=config.metric)
    finally:
        store.dispose()
    lines: list[GrowthLine] = []
    for f in report.forecasts:
        key = f.series
        name = f"{key.task}/{key.target}/{key.metric}"
        if f.note:
            lines.append(GrowthLine(name, None, f"{name}: {f.note}"))
            continue
        ex = f.exhaustion
        rate = f"growing {f.growth_per_day:+.4g}/day ({f.growth_how})" if f.growth_per_day is not None else ""
        if ex is None:
            lines.append(GrowthLine(name, None, f"{name}: last {f.last_value:.4g}, {rate}; no limit known"))
            continue
        days = ex.days if ex.days is not None else ex.earliest_days
        when = "not within the horizon" if days is None else f"full in {days:.0f} days"
        text = f"{name}: last {f.last_value:.4g} of {ex.limit:.4g} ({ex.limit_source}), {rate}; {when}"
        text += f" ({ex.how})"
        lines.append(GrowthLine(name, days, text))
    return lines
