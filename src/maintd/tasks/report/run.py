"""One report run: compose the report from the store, write its files (a dry run lists them)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from sqlalchemy.exc import SQLAlchemyError

from maintd.checks.base import Change, CheckResult, RunContext, Status
from maintd.reports import build, period_of
from maintd.reports.model import Chart
from maintd.reports.render import planned, write
from maintd.store.db import StoreError
from maintd.tasks.report import ReportConfig
from maintd.tasks.store_access import database_url, read


async def run(config: ReportConfig, ctx: RunContext) -> CheckResult:
    url, shown = database_url(config.database)
    now = ctx.clock.now()
    period = period_of(config.report, config.period, now)  # the form was validated with the config
    try:
        doc = await asyncio.to_thread(read, url, lambda session: build(config.report, session, period, now))
    except (StoreError, SQLAlchemyError, OSError) as exc:  # refused, no such database, no tables
        return CheckResult(
            Status.critical, f"cannot read maintd's records from {shown}: {exc}".splitlines()[0]
        )
    out = Path(config.out)
    charts = sum(isinstance(b, Chart) for s in doc.sections for b in s.blocks)
    metrics = {"sections": float(len(doc.sections)), "charts": float(charts)}
    headline = f"{doc.title} ({period.start:%Y-%m-%d} to {period.end:%Y-%m-%d})"
    if ctx.dry_run:
        paths = planned(doc, out)
        said = f"{headline}\ndry run: would write {len(paths)} files to {out}"
        return CheckResult(Status.ok, said, metrics, [Change("write", str(p), {}) for p in paths])
    try:
        written = await asyncio.to_thread(write, doc, out)
    except OSError as exc:
        why = f"cannot write the report to {exc.filename or out}: {exc.strerror or exc}"
        return CheckResult(Status.critical, why, metrics)
    changes = [Change("write", str(p), {"bytes": p.stat().st_size}) for p in written]
    return CheckResult(Status.ok, f"{headline}\nwritten to {out}", metrics, changes)
