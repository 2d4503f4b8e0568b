"""Series from the runs table: one (task, target, metric) each, the metric's unit and its limit.

Which metrics are capacity metrics, and where their limit comes from, is the table ``KNOWN``:
the disk check's used bytes are limited by used + free bytes of the same run, Redis memory by
maxmemory, PostgreSQL connections by max_connections, percentages by 100. A command check's
perfdata metric is one when it prints a maximum (``label.max``). Any other metric can be asked
for by name (``--metric``); a configured limit overrides the one read from the run.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from maintd.capacity.model import SeriesKey, Unit
from maintd.clock import utc
from maintd.store.models import RunRow

Limit = Callable[[dict[str, float], str], tuple[float, str] | None]


def _sum(*names: str) -> Limit:
    def limit(metrics: dict[str, float], suffix: str) -> tuple[float, str] | None:
        keys = [f"{n}{suffix}" for n in names]
        if not all(k in metrics for k in keys):
            return None
        return sum(metrics[k] for k in keys), " + ".join(keys)

    return limit


def _positive(name: str) -> Limit:
    def limit(metrics: dict[str, float], suffix: str) -> tuple[float, str] | None:
        value = metrics.get(f"{name}{suffix}", 0.0)
        return (value, f"{name}{suffix}") if value > 0 else None  # maxmemory 0 means unbounded

    return limit


def _fixed(value: float) -> Limit:
    return lambda metrics, suffix: (value, f"{value:g} (a percentage)")


# metric (without the disk check's ":path" suffix) -> (unit, how its limit is found)
KNOWN: dict[str, tuple[Unit, Limit]] = {
    "used_bytes": ("bytes", _sum("used_bytes", "free_bytes")),  # disk: df's usable size
    "used_percent": ("%", _fixed(100.0)),
    "inode_percent": ("%", _fixed(100.0)),
    "used_memory": ("bytes", _positive("maxmemory")),  # redis
    "memory_percent": ("%", _fixed(100.0)),
    "connected_clients": ("count", _positive("maxclients")),
    "clients_percent": ("%", _fixed(100.0)),
    "connections": ("count", _positive("max_connections")),  # postgres
    "connection_percent": ("%", _fixed(100.0)),
}


# Built-in kinds whose metrics are latencies, counts and flags, never a capacity: without
# ``metric`` their runs (a probe a minute is half a million rows a year) are not read at all.
PROBE_KINDS = ("http", "tcp", "dns", "tls", "mcp", "kubernetes")


@dataclass
class Series:
    key: SeriesKey
    unit: Unit
    points: list[tuple[datetime, float]] = field(default_factory=list)
    limit: float | None = None
    limit_source: str = ""


def split_suffix(metric: str) -> tuple[str, str]:
    """``used_bytes:/var`` -> (``used_bytes``, ``:/var``): the disk check names one path per suffix."""
    base, sep, rest = metric.partition(":")
    return base, f"{sep}{rest}"


def unit_of(metric: str) -> Unit:
    base, _ = split_suffix(metric)
    if base in KNOWN:
        return KNOWN[base][0]
    if base.endswith("_bytes") or base.endswith("_memory"):
        return "bytes"
    return "%" if base.endswith("_percent") else "count"


def is_capacity_metric(metric: str, metrics: dict[str, float]) -> bool:
    base, _ = split_suffix(metric)
    if base in KNOWN:
        return True
    if "." in metric:  # perfdata's label.warn / .crit / .min / .max are limits, not series
        return False
    return f"{metric}.max" in metrics  # a perfdata value that prints its maximum


def limit_of(metric: str, metrics: dict[str, float]) -> tuple[float, str] | None:
    base, suffix = split_suffix(metric)
    if base in KNOWN:
        return KNOWN[base][1](metrics, suffix)
    if f"{metric}.max" in metrics:
        return metrics[f"{metric}.max"], f"{metric}.max"
    return None


def load(
    session: Session,
    *,
    since: datetime,
    until: datetime,
    task: str | None = None,
    target: str | None = None,
    metric: str | None = None,
) -> list[Series]:
    """Every capacity series (or every series of ``metric``) from the finished, real runs in
    ``[since, until)``; the limit is the one of the latest run that gives one."""
    query = select(RunRow.task, RunRow.target, RunRow.finished_at, RunRow.metrics).where(
        RunRow.state == "finished",
        RunRow.dry_run.is_(False),
        RunRow.finished_at.is_not(None),
        RunRow.finished_at >= since,
        RunRow.finished_at < until,
    )
    if task is not None:
        query = query.where(RunRow.task == task)
    if target is not None:
        query = query.where(RunRow.target == target)
    if metric is None:
        query = query.where(RunRow.kind.not_in(PROBE_KINDS))
    found: dict[tuple[str, str, str], Series] = {}
    by_key: defaultdict[tuple[str, str, str], list[tuple[datetime, float]]] = defaultdict(list)
    for run_task, run_target, at, metrics in session.execute(query.order_by(RunRow.finished_at)):
        if at is None or not metrics:
            continue
        for name, value in metrics.items():
            if not isinstance(value, int | float) or isinstance(value, bool):
                continue
            if metric is not None and name != metric:
                continue
            if metric is None and not is_capacity_metric(name, metrics):
                continue
            key = (run_task, run_target, name)
            if key not in found:
                found[key] = Series(SeriesKey(task=run_task, target=run_target, metric=name), unit_of(name))
            by_key[key].append((utc(at), float(value)))
            limit = limit_of(name, metrics)
            if limit is not None:
                found[key].limit, found[key].limit_source = limit
    for key, series in found.items():
        series.points = by_key[key]
    return [found[k] for k in sorted(found)]
