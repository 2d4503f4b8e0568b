"""Method ``basebackup``: pg_basebackup into the drill directory, start the copy, optionally
promote it as a standby with the failover command, compare it with the source, tear down.

RTO runs from the backup's start to the copy verified (failover included). The source's
baseline checksums are read before that clock starts: they are not part of a recovery.
"""

from __future__ import annotations

import asyncio
import os
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg

from maintd.checks.base import Change, RunContext, Status
from maintd.tasks.backup_postgres.tables import TableSum
from maintd.tasks.dr_drill import DrDrillConfig
from maintd.tasks.dr_drill.drill import Drill, default_drill_dir, finish
from maintd.tasks.dr_drill.instance import (
    Layout,
    Programs,
    basebackup,
    configure,
    connect_copy,
    free_port,
    in_recovery,
    prepare,
    programs,
    run,
    start,
    teardown,
)
from maintd.tasks.dr_drill.source import (
    DrillError,
    compare,
    open_source,
    source_now,
    sums_of,
    table_sums,
    where,
)
from maintd.tasks.dr_drill.verify import judge_newest, judge_tables, mark

POLL = 0.05


async def drill_basebackup(cfg: DrDrillConfig, ctx: RunContext, source: dict[str, Any], drill: Drill) -> None:
    progs = programs(cfg.bin_dir, cfg.run_as)
    for name in ("pg_basebackup", "pg_ctl"):
        progs.path(name)  # a missing program stops the drill before anything is touched
    layout = Layout(
        Path(cfg.drill_dir) if cfg.drill_dir else default_drill_dir(ctx), cfg.drill_port or free_port()
    )
    async with await open_source(source) as conn:
        await prepare(layout, progs, ctx)
        drill.changes.append(Change("create", str(layout.root)))
        try:
            with drill.phase("baseline"):
                before = await table_sums(conn, cfg)
            await _restore_and_verify(cfg, ctx, source, drill, conn, layout, progs, before)
        finally:
            started = (layout.data / "postmaster.pid").is_file()  # no "stop" for a copy never started
            problems = await finish(teardown(layout, progs, ctx))
            drill.changes += [Change("stop", str(layout.data))] if started else []
            drill.changes.append(Change("remove", str(layout.root)))
            for line in problems:
                drill.add(Status.critical, line)


async def _restore_and_verify(
    cfg: DrDrillConfig,
    ctx: RunContext,
    source: dict[str, Any],
    drill: Drill,
    conn: psycopg.AsyncConnection[Any],
    layout: Layout,
    progs: Programs,
    before: dict[str, TableSum],
) -> None:
    marked = await mark(cfg, ctx, conn, source, drill)
    started = time.perf_counter()
    with drill.phase("backup"):
        await basebackup(layout, progs, source, ctx, standby=cfg.standby)
    drill.changes.append(Change("basebackup", str(layout.data), {"source": where(source)}))
    cut = await source_now(conn)  # without a standby the copy holds the WAL up to here
    configure(layout, cfg.settings)
    with drill.phase("start"):
        await start(layout, progs, ctx)
    drill.changes.append(Change("start", str(layout.data), {"port": layout.port, "run_as": progs.run_as}))
    async with await connect_copy(layout, source) as copy:
        if cfg.standby:
            marked = await mark(cfg, ctx, conn, source, drill)  # after the copy streams: RPO of the failover
            with drill.phase("replay"):
                await _caught_up(conn, copy, cfg.failover_timeout.total_seconds())
            cut = await source_now(conn)
            with drill.phase("promote"):
                await _failover(cfg, ctx, layout, progs, copy, drill)
        with drill.phase("verify"):
            await _verify(cfg, ctx, drill, conn, copy, before, marked, cut)
    drill.metrics["rto_seconds"] = round(time.perf_counter() - started, 3)


async def _caught_up(
    conn: psycopg.AsyncConnection[Any], copy: psycopg.AsyncConnection[Any], limit: float
) -> None:
    """Wait until the standby has replayed the source's WAL up to now (the marker included)."""
    row = await (await conn.execute("SELECT pg_current_wal_lsn()::text")).fetchone()
    assert row is not None
    deadline = time.monotonic() + limit
    query = "SELECT coalesce(pg_last_wal_replay_lsn() >= %s::pg_lsn, false)"
    while not (found := await (await copy.execute(query, (row[0],))).fetchone()) or not found[0]:
        if time.monotonic() > deadline:
            raise DrillError(f"the standby did not replay the source's WAL up to {row[0]} within {limit:g}s")
        await asyncio.sleep(POLL)


def failover_argv(command: list[str], layout: Layout, progs: Programs, bin_dir: str | None) -> list[str]:
    """Placeholders replaced inside each argument; the list is never given to a shell."""
    pg_ctl = progs.path("pg_ctl")
    values = {
        "data_dir": str(layout.data),
        "drill_dir": str(layout.root),
        "port": str(layout.port),
        "bin_dir": bin_dir or os.path.dirname(pg_ctl),
        "pg_ctl": pg_ctl,
    }
    argv = []
    for arg in command:
        for name, value in values.items():
            arg = arg.replace(f"{{{name}}}", value)
        argv.append(arg)
    return argv


async def _failover(
    cfg: DrDrillConfig,
    ctx: RunContext,
    layout: Layout,
    progs: Programs,
    copy: psycopg.AsyncConnection[Any],
    drill: Drill,
) -> None:
    assert cfg.failover_command is not None
    argv = failover_argv(cfg.failover_command, layout, progs, cfg.bin_dir)
    wrapped = ["runuser", "-u", progs.run_as, "--", *argv] if progs.run_as else argv
    try:
        await run(wrapped, f"failover command {argv[0]}", ctx, cwd=layout.root)
    except DrillError:
        drill.changes.append(Change("failover", argv[0], {"argv": argv, "succeeded": False}))
        raise
    drill.changes.append(Change("failover", argv[0], {"argv": argv, "succeeded": True}))
    limit = cfg.failover_timeout.total_seconds()
    deadline = time.monotonic() + limit
    while await in_recovery(copy):
        if time.monotonic() > deadline:
            raise DrillError(f"the copy is still in recovery {limit:g}s after the failover command")
        await asyncio.sleep(POLL)
    drill.lines.append(f"failover: {argv[0]} promoted the copy (out of recovery)")


async def _verify(
    cfg: DrDrillConfig,
    ctx: RunContext,
    drill: Drill,
    conn: psycopg.AsyncConnection[Any],
    copy: psycopg.AsyncConnection[Any],
    before: dict[str, TableSum],
    marked: datetime | None,
    cut: datetime,
) -> None:
    copied = await table_sums(copy, cfg)
    # Only tables that differ from the baseline are read on the source again: a copy equal to
    # the baseline holds the source's rows as they were during the drill, and re-reading every
    # table would double the verification on a large database.
    moved = sorted(name for name in before.keys() | copied.keys() if before.get(name) != copied.get(name))
    after = {**before, **await sums_of(conn, moved)}
    judge_tables(cfg, drill, compare(before, after, copied))
    await judge_newest(cfg, ctx, drill, copy, marked, cut)
    drill.verified = drill.status is Status.ok or drill.status is Status.warning
