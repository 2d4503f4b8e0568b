"""Method ``dump``: pg_dump of the source from an exported snapshot, restored into a scratch
database on the same server, compared with the source's checksums read in that same snapshot.

The comparison is exact even while the source keeps writing: pg_dump ``--snapshot`` and the
checksums see the same rows. The scratch database carries a comment naming the drill; an
existing database without it is never dropped.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from maintd.checks.base import Change, RunContext, Status
from maintd.tasks.backup_postgres.tables import connect, libpq_args, libpq_env
from maintd.tasks.dr_drill import DrDrillConfig
from maintd.tasks.dr_drill.drill import Drill, default_drill_dir, finish, scratch_name
from maintd.tasks.dr_drill.instance import OWNED, Layout, Programs, prepare, run, teardown
from maintd.tasks.dr_drill.source import DrillError, compare, one_line, open_source, table_sums
from maintd.tasks.dr_drill.verify import judge_newest, judge_tables, mark

COMMENT = "maintd dr-drill scratch"


async def drill_dump(cfg: DrDrillConfig, ctx: RunContext, source: dict[str, Any], drill: Drill) -> None:
    progs = Programs(cfg.bin_dir, None)  # client programs: as maintd, into a directory maintd owns
    for name in ("pg_dump", "pg_restore"):
        progs.path(name)
    layout = Layout(Path(cfg.drill_dir) if cfg.drill_dir else default_drill_dir(ctx), 0)
    scratch = cfg.scratch_database or scratch_name(ctx)
    async with await open_source(source) as conn:
        await prepare(layout, progs, ctx)
        drill.changes.append(Change("create", str(layout.root)))
        marked = await mark(cfg, ctx, conn, source, drill)
        created = False
        try:
            started = time.perf_counter()
            with drill.phase("backup"):
                expected, cut = await _dump(cfg, ctx, conn, source, layout, progs, drill)
            created = await _create_scratch(conn, scratch, source)
            at = {**source, "dbname": scratch}
            with drill.phase("restore"):
                await _restore(ctx, at, layout, progs, drill)
            with drill.phase("verify"):
                async with await connect(at) as copy:
                    copied = await table_sums(copy, cfg)
                    judge_tables(cfg, drill, compare(None, expected, copied))
                    await judge_newest(cfg, ctx, drill, copy, marked, cut)
            drill.verified = drill.status in (Status.ok, Status.warning)
            drill.metrics["rto_seconds"] = round(time.perf_counter() - started, 3)
        finally:
            if created:
                await finish(_drop(conn, scratch, source, drill))
            problems = await finish(teardown(layout, progs, ctx))
            drill.changes.append(Change("remove", str(layout.root)))
            for line in problems:
                drill.add(Status.critical, line)


async def _dump(
    cfg: DrDrillConfig,
    ctx: RunContext,
    conn: psycopg.AsyncConnection[Any],
    source: dict[str, Any],
    layout: Layout,
    progs: Programs,
    drill: Drill,
) -> tuple[Any, Any]:
    """pg_dump and the source's checksums, concurrently, from one exported snapshot."""
    path = layout.root / "source.dump"
    async with conn.transaction():
        await conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        row = await (await conn.execute("SELECT pg_export_snapshot(), clock_timestamp()")).fetchone()
        assert row is not None
        argv = progs.argv("pg_dump", "--format=custom", f"--snapshot={row[0]}", f"--file={path}")
        dumped = run([*argv, *libpq_args(source)], "pg_dump", ctx, cwd=layout.root, env=libpq_env(source))
        _, expected = await asyncio.gather(dumped, table_sums(conn, cfg))
    drill.changes.append(Change("dump", str(path), {"source": f"{source['host']}:{source['port']}"}))
    return expected, row[1]


async def _create_scratch(conn: psycopg.AsyncConnection[Any], scratch: str, source: dict[str, Any]) -> bool:
    await _drop_if_ours(conn, scratch, source)
    name = sql.Identifier(scratch)
    try:
        await conn.execute(sql.SQL("CREATE DATABASE {} TEMPLATE template0").format(name))
        await conn.execute(sql.SQL("COMMENT ON DATABASE {} IS {}").format(name, sql.Literal(COMMENT)))
    except psycopg.Error as exc:
        raise DrillError(f"scratch database {scratch} on {_server(source)}: {one_line(exc)}") from None
    return True


async def _drop_if_ours(conn: psycopg.AsyncConnection[Any], scratch: str, source: dict[str, Any]) -> None:
    """A scratch database a crashed drill left goes first; any other database of that name stays."""
    cur = await conn.execute(
        "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = %s", (scratch,)
    )
    row = await cur.fetchone()
    if row is None:
        return
    if row[0] != COMMENT:
        raise DrillError(
            f"scratch database {scratch} on {_server(source)} exists and was not made by a drill "
            f"(no comment {COMMENT!r}): refusing to drop it"
        )
    await conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(scratch)))


async def _restore(
    ctx: RunContext, at: dict[str, Any], layout: Layout, progs: Programs, drill: Drill
) -> None:
    target = f"{_server(at)}/{at['dbname']}"
    argv = progs.argv("pg_restore", "--exit-on-error", "--no-owner", "--no-privileges", *libpq_args(at))
    try:
        await run(
            [*argv, str(layout.root / "source.dump")],
            f"restore into {target}",
            ctx,
            cwd=layout.root,
            env=libpq_env(at),
        )
    except DrillError:
        drill.changes.append(Change("restore", target, {"succeeded": False}))
        raise
    drill.changes.append(Change("restore", target))


async def _drop(
    conn: psycopg.AsyncConnection[Any], scratch: str, source: dict[str, Any], drill: Drill
) -> None:
    try:
        await conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(scratch)))
    except psycopg.Error as exc:
        drill.add(Status.critical, f"cannot drop scratch database {scratch}: {one_line(exc)}")
        return
    drill.changes.append(Change("drop", f"{_server(source)}/{scratch}"))


def _server(p: dict[str, Any]) -> str:
    return f"{p['host']}:{p['port']}"


__all__ = ["OWNED", "drill_dump"]
