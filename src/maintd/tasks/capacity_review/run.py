"""One capacity review run: read the runs, forecast, write the report, judge the soonest limit."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

from sqlalchemy.exc import SQLAlchemyError

from maintd.capacity.model import CapacityReport, Exhaustion
from maintd.capacity.render import CHARTS, chart_name, write
from maintd.capacity.review import review
from maintd.checks.base import Change, CheckResult, RunContext, Status
from maintd.store.db import StoreError
from maintd.tasks.capacity_review import CapacityReviewConfig
from maintd.tasks.store_access import database_url, read

FILES = ("capacity.html", "capacity.md")


async def run(config: CapacityReviewConfig, ctx: RunContext) -> CheckResult:
    url, shown = database_url(config.database)
    try:
        report = await asyncio.to_thread(_review, url, config, ctx)  # CPU-bound: off the event loop
    except (StoreError, SQLAlchemyError, OSError) as exc:  # refused, no such database, no runs table
        return CheckResult(Status.critical, f"cannot read the runs from {shown}: {exc}".splitlines()[0])
    status, soonest, lines = _judge(report, config)
    metrics = {"series": float(len(report.forecasts)), "recommendations": float(len(report.recommendations))}
    if soonest is not None:
        metrics["days_to_limit"] = round(soonest, 1)
    out = Path(config.out)
    planned = [out / name for name in FILES]
    planned += [out / CHARTS / chart_name(f) for f in report.forecasts if not f.note]
    if ctx.dry_run:
        changes = [Change("write", str(p), {}) for p in planned]
        return CheckResult(status, "\n".join([*lines, f"dry run: would write {len(planned)} files to {out}"]),
                           metrics, changes)  # fmt: skip
    try:
        written = await asyncio.to_thread(write, report, out)
    except OSError as exc:
        why = f"cannot write the report to {exc.filename or out}: {exc.strerror or exc}"
        return CheckResult(Status.critical, why, metrics)
    changes = [Change("write", str(p), {"bytes": p.stat().st_size}) for p in written]
    return CheckResult(status, "\n".join([*lines, f"report written to {out}"]), metrics, changes)


def _review(url: str, config: CapacityReviewConfig, ctx: RunContext) -> CapacityReport:
    return read(url, lambda session: review(
        session, now=ctx.clock.now(), history=config.history, task=config.task,
        target=config.series_target, metric=config.metric, limit=config.limit,
    ))  # fmt: skip


def _judge(report: CapacityReport, config: CapacityReviewConfig) -> tuple[Status, float | None, list[str]]:
    """The status from the soonest limit: critical within ``crit_within``, warning within
    ``warn_within``; the summary line and one line per recommendation."""
    days = [r_days for f in report.forecasts if (r_days := _days(f.exhaustion)) is not None]
    soonest = min(days) if days else None
    status = Status.ok
    if soonest is not None and timedelta(days=soonest) <= config.crit_within:
        status = Status.critical
    elif soonest is not None and timedelta(days=soonest) <= config.warn_within:
        status = Status.warning
    short = sum(1 for f in report.forecasts if f.note)
    summary = f"{len(report.forecasts)} series ({short} too short to project), "
    summary += f"{len(report.recommendations)} recommendations"
    if soonest is not None:
        summary += f"; the soonest limit in {soonest:.0f} days"
    return status, soonest, [summary, *(f"{r.urgency}: {r.text}" for r in report.recommendations)]


def _days(exhaustion: Exhaustion | None) -> float | None:
    if exhaustion is None:
        return None
    return exhaustion.days if exhaustion.days is not None else exhaustion.earliest_days
