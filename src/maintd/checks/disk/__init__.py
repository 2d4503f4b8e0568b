"""``disk``: space and inode usage of the filesystem holding a path (seed: alert above 80 %),
and how fast it fills: a least-squares trend of ``used_bytes`` over the recent runs
(``ctx.history``) projects the hours until it is full."""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Self

from pydantic import Field, model_validator

from maintd.checks.base import CheckResult, Kind, RunContext, RunSample, Status, format_bytes
from maintd.clock import utc
from maintd.plan.base import StrictModel
from maintd.plan.types import Duration

MIN_TREND_POINTS = 3  # this run included


class DiskConfig(StrictModel):
    path: str | None = Field(default=None, description="default: the target's connection.path")
    paths: list[str] = Field(
        default=[], description="several paths checked at once (instead of path); the worst decides"
    )
    warn_percent: float = Field(default=80.0, gt=0, le=100, description="warning at or above this usage")
    crit_percent: float = Field(default=90.0, gt=0, le=100, description="critical at or above this usage")
    inode_warn_percent: float = Field(
        default=80.0, gt=0, le=100, description="warning at or above this inode usage"
    )
    inode_crit_percent: float = Field(
        default=90.0, gt=0, le=100, description="critical at or above this inode usage"
    )
    trend_runs: int = Field(
        default=12, ge=2, le=1000, description="earlier runs the fill rate is computed over"
    )
    trend_min_span: Duration = Field(
        default=timedelta(minutes=10),
        description="no fill rate until the runs used span at least this long",
    )
    warn_hours_to_full: float | None = Field(
        default=None, gt=0, description="warning when projected full within this many hours"
    )
    crit_hours_to_full: float | None = Field(
        default=None, gt=0, description="critical when projected full within this many hours"
    )

    @model_validator(mode="after")
    def _one_way_to_name_paths(self) -> Self:
        if self.path is not None and self.paths:
            raise ValueError("give either 'path' or 'paths', not both")
        return self


@dataclass
class Usage:
    path: str
    status: Status
    line: str
    metrics: dict[str, float]
    percent: float


class DiskCheck:
    def __init__(self, config: DiskConfig) -> None:
        self.config = config

    async def run(self, ctx: RunContext) -> CheckResult:
        cfg = self.config
        paths = list(dict.fromkeys(cfg.paths)) or [cfg.path or ctx.target.connection.get("path") or ""]
        if not paths[0]:
            return CheckResult(
                Status.unknown, f"no path: set params.path or target {ctx.target.name}'s connection.path"
            )
        now = ctx.clock.now()
        history = await ctx.history(cfg.trend_runs)
        single = len(paths) == 1
        usages = [await self._one(path, "" if single else f":{path}", history, now) for path in paths]
        if single:
            (usage,) = usages
            return CheckResult(usage.status, usage.line, usage.metrics)
        metrics: dict[str, float] = {}
        for usage in usages:
            metrics.update(usage.metrics)
        # The worst path's figures, unsuffixed, for graphs and alerts over all of them.
        measured = [u for u in usages if u.metrics]
        if measured:
            metrics["used_percent"] = max(u.metrics[f"used_percent:{u.path}"] for u in measured)
            metrics["inode_percent"] = max(u.metrics[f"inode_percent:{u.path}"] for u in measured)
        hours = [
            u.metrics[f"hours_to_full:{u.path}"] for u in usages if f"hours_to_full:{u.path}" in u.metrics
        ]
        if hours:
            metrics["hours_to_full"] = min(hours)
        worst = max(usages, key=lambda u: (u.status.rank, u.percent))
        status = worst.status
        summary = f"{len(usages)} paths, worst {worst.line.splitlines()[0]}"
        return CheckResult(status, "\n".join([summary, *(u.line for u in usages)]), metrics)

    async def _one(self, path: str, suffix: str, history: list[RunSample], now: datetime) -> Usage:
        cfg = self.config
        try:
            st = await asyncio.to_thread(os.statvfs, path)
        except OSError as exc:
            return Usage(path, Status.critical, f"{path}: {exc.strerror or exc}", {}, 101.0)
        # Like df: the space an unprivileged user can use is the denominator.
        usable = (st.f_blocks - st.f_bfree + st.f_bavail) * st.f_frsize
        used = (st.f_blocks - st.f_bfree) * st.f_frsize
        free = st.f_bavail * st.f_frsize
        percent = 100.0 * used / usable if usable else 0.0
        inode_percent = 100.0 * (st.f_files - st.f_ffree) / st.f_files if st.f_files else 0.0
        status = max(
            _level(percent, cfg.warn_percent, cfg.crit_percent),
            _level(inode_percent, cfg.inode_warn_percent, cfg.inode_crit_percent),
            key=lambda s: s.rank,
        )
        metrics = {
            "used_percent": round(percent, 2),
            "inode_percent": round(inode_percent, 2),
            "used_bytes": float(used),
            "free_bytes": float(free),
        }
        space = f"{percent:.1f}% used (warning at {cfg.warn_percent:g}%, critical at {cfg.crit_percent:g}%)"
        inodes = f"inodes {inode_percent:.1f}% used"
        if _level(inode_percent, cfg.inode_warn_percent, cfg.inode_crit_percent) is not Status.ok:
            inodes += f" (warning at {cfg.inode_warn_percent:g}%, critical at {cfg.inode_crit_percent:g}%)"
        line = f"{path}: {space}, {free / 2**20:.0f} MiB free, {inodes}"
        rate, why_not = fill_rate(history, f"used_bytes{suffix}", now, float(used), cfg.trend_min_span)
        if rate is None:
            line += f"\n{path}: {why_not}"
        else:
            metrics["fill_rate_bytes_per_hour"] = round(rate, 1)
            if rate > 0:
                hours = free / rate
                metrics["hours_to_full"] = round(hours, 3)
                trend_status = _below(hours, cfg.warn_hours_to_full, cfg.crit_hours_to_full)
                status = max(status, trend_status, key=lambda s: s.rank)
                line += f", filling at {format_bytes(rate)}/h: full in {_hours(hours)}{self._trend_limits()}"
            else:
                line += f", {'shrinking' if rate < 0 else 'steady'} ({format_bytes(rate)}/h)"
        return Usage(path, status, line, {f"{k}{suffix}": v for k, v in metrics.items()}, percent)

    def _trend_limits(self) -> str:
        cfg = self.config
        limits = [
            f"warning under {cfg.warn_hours_to_full:g} h" if cfg.warn_hours_to_full is not None else "",
            f"critical under {cfg.crit_hours_to_full:g} h" if cfg.crit_hours_to_full is not None else "",
        ]
        shown = [t for t in limits if t]
        return f" ({', '.join(shown)})" if shown else ""


def fill_rate(
    history: list[RunSample], metric: str, now: datetime, used_now: float, min_span: timedelta
) -> tuple[float | None, str]:
    """The least-squares slope of ``metric`` over the earlier runs and now, in bytes per hour.

    Returns (None, why) when there are fewer than MIN_TREND_POINTS points or they span
    less than ``min_span``.
    """
    points = [(utc(s.started_at), float(s.metrics[metric])) for s in history if metric in s.metrics]
    points = [(t, v) for t, v in points if t < now] + [(now, used_now)]
    span = now - min(t for t, _ in points)
    if len(points) < MIN_TREND_POINTS or span < min_span:
        return None, (
            f"no fill rate yet: {len(points)} run{'' if len(points) == 1 else 's'} over {_duration(span)}, "
            f"needs {MIN_TREND_POINTS} over {_duration(min_span)}"
        )
    xs = [(t - now).total_seconds() / 3600 for t, _ in points]
    ys = [v for _, v in points]
    mean_x, mean_y = sum(xs) / len(xs), sum(ys) / len(ys)
    sxx = sum((x - mean_x) ** 2 for x in xs)
    sxy = sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys, strict=True))
    return sxy / sxx, ""


def _level(value: float, warn: float, crit: float) -> Status:
    if value >= crit:
        return Status.critical
    return Status.warning if value >= warn else Status.ok


def _below(value: float, warn: float | None, crit: float | None) -> Status:
    if crit is not None and value <= crit:
        return Status.critical
    if warn is not None and value <= warn:
        return Status.warning
    return Status.ok


def _hours(hours: float) -> str:
    if hours < 1:
        return f"{hours * 60:.0f} min"
    if hours < 72:
        return f"{hours:.1f} h"
    return f"{hours / 24:.0f} days"


def _duration(value: timedelta) -> str:
    seconds = int(value.total_seconds())
    if seconds < 120:
        return f"{seconds}s"
    if seconds < 7200:
        return f"{seconds // 60}m"
    return f"{seconds / 3600:.1f}h"


KIND = Kind(
    name="disk",
    config=DiskConfig,
    build=DiskCheck,
    summary="filesystem space and inode usage of paths, fill rate and hours to full from recent runs",
)
