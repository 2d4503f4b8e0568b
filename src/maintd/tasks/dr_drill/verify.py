"""What both methods share in verification: the marker on the source, the tables compared,
the marker found again in the copy and RPO."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import psycopg

from maintd.checks.base import Change, RunContext, Status
from maintd.tasks.dr_drill import DrDrillConfig
from maintd.tasks.dr_drill.drill import Drill, rpo_line
from maintd.tasks.dr_drill.source import Comparison, DrillError, drill_key, read_marker, where, write_marker


async def mark(
    cfg: DrDrillConfig,
    ctx: RunContext,
    conn: psycopg.AsyncConnection[Any],
    source: dict[str, Any],
    drill: Drill,
) -> datetime | None:
    if not cfg.marker_table:
        return None
    try:
        at = await write_marker(conn, cfg.marker_table, drill_key(ctx))
    except psycopg.Error as exc:
        raise DrillError(f"marker in {where(source)} public.{cfg.marker_table}: {exc}".strip()) from None
    drill.changes.append(
        Change(
            "mark",
            f"{where(source)} public.{cfg.marker_table}",
            {"drill_key": drill_key(ctx), "at": at.isoformat()},
        )
    )
    return at


def judge_tables(cfg: DrDrillConfig, drill: Drill, result: Comparison) -> None:
    rows = result.rows
    drill.metrics.update(
        tables_compared=float(result.compared),
        tables_differing=float(len(result.problems)),
        tables_changed=float(len(result.changed)),
        rows=float(rows),
    )
    if result.compared and not result.problems:
        tables = f"{result.compared} table{'s' if result.compared != 1 else ''}"
        drill.lines.append(f"{tables} ({rows} rows in the copy): row counts and checksums match")
    if result.changed:
        names = ", ".join(result.changed[: cfg.list_limit])
        drill.lines.append(f"changed on the source during the drill, not compared: {names}")
        if not result.compared:
            drill.add(Status.warning, "every table changed on the source during the drill: nothing compared")
    for line in result.problems[: cfg.list_limit]:
        drill.add(Status.critical, line)
    if len(result.problems) > cfg.list_limit:
        drill.lines.append(f"... and {len(result.problems) - cfg.list_limit} more tables")


async def judge_newest(
    cfg: DrDrillConfig,
    ctx: RunContext,
    drill: Drill,
    copy: psycopg.AsyncConnection[Any],
    marked: datetime | None,
    cut: datetime,
) -> None:
    """The marker must have come back; RPO from the rpo_query's answer, else from the marker."""
    got = await read_marker(copy, cfg.marker_table, drill_key(ctx)) if cfg.marker_table else None
    if marked is not None and (got is None or got < marked):
        seen = got.isoformat() if got else "none"
        drill.add(
            Status.critical,
            f"the marker written at {marked.isoformat()} did not come back (the copy has {seen})",
        )
    if cfg.rpo_query:
        try:
            row = await (await copy.execute(cfg.rpo_query.encode())).fetchone()
        except psycopg.Error as exc:
            raise DrillError(f"rpo_query on the copy: {' '.join(str(exc).split())}") from None
        newest = row[0] if row and isinstance(row[0], datetime) else None
        rpo_line(drill, cut, newest, "rpo_query")
    elif cfg.marker_table:
        rpo_line(drill, cut, got, f"the marker in public.{cfg.marker_table}")
