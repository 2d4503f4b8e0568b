"""The source side of a drill: connection parameters, the RPO marker row, and table comparison.

The marker is one row per task and target (``drill_key``), overwritten by each drill with the
source server's own ``clock_timestamp()``: the table stays one row per drill, re-running is
harmless, and RPO is computed in the source server's clock only (maintd's clock may differ).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg import sql

from maintd.checks.base import RunContext
from maintd.checks.postgres.check import libpq_params
from maintd.tasks.backup_postgres.tables import TableSum, checksums, connect, table_sum
from maintd.tasks.dr_drill import DrDrillConfig


class DrillError(Exception):
    """A drill step failed; the message is the run's exact line (what, where, why)."""


def params(cfg: DrDrillConfig, ctx: RunContext) -> dict[str, Any]:
    """libpq parameters of the source; raises DrillError when the password secret cannot be read."""
    found = {"host": "127.0.0.1"} | libpq_params(cfg, ctx)
    if cfg.password_secret in ctx.target.secrets:
        try:
            found["password"] = ctx.secret(cfg.password_secret)
        except LookupError as exc:
            raise DrillError(str(exc)) from None
    return found


def where(p: dict[str, Any]) -> str:
    return f"{p['host']}:{p['port']}/{p['dbname']}"


async def open_source(p: dict[str, Any]) -> psycopg.AsyncConnection[Any]:
    try:
        return await connect(p)
    except psycopg.Error as exc:
        raise DrillError(f"PostgreSQL at {where(p)}: cannot connect: {one_line(exc)}") from None


def drill_key(ctx: RunContext) -> str:
    return f"{ctx.task.name}/{ctx.target.name}"


async def write_marker(conn: psycopg.AsyncConnection[Any], table: str, key: str) -> datetime:
    """Upsert this drill's marker row; returns the time written (the source's clock)."""
    ident = sql.Identifier("public", table)
    await conn.execute(
        sql.SQL(
            "CREATE TABLE IF NOT EXISTS {} (drill_key text PRIMARY KEY, written_at timestamptz NOT NULL)"
        ).format(ident)
    )
    row = await (
        await conn.execute(
            sql.SQL(
                "INSERT INTO {} VALUES (%s, clock_timestamp()) ON CONFLICT (drill_key) "
                "DO UPDATE SET written_at = excluded.written_at RETURNING written_at"
            ).format(ident),
            (key,),
        )
    ).fetchone()
    assert row is not None
    return row[0]  # type: ignore[no-any-return]


async def read_marker(conn: psycopg.AsyncConnection[Any], table: str, key: str) -> datetime | None:
    ident = sql.Identifier("public", table)
    try:
        cur = await conn.execute(
            sql.SQL("SELECT written_at FROM {} WHERE drill_key = %s").format(ident), (key,)
        )
    except psycopg.errors.UndefinedTable:
        return None
    row = await cur.fetchone()
    return None if row is None else row[0]


async def source_now(conn: psycopg.AsyncConnection[Any]) -> datetime:
    row = await (await conn.execute("SELECT clock_timestamp()")).fetchone()
    assert row is not None
    return row[0]  # type: ignore[no-any-return]


async def table_sums(conn: psycopg.AsyncConnection[Any], cfg: DrDrillConfig) -> dict[str, TableSum]:
    """Checksums of the compared tables: ``tables`` (or every user table), never the marker table."""
    found = await checksums(conn)
    skip = f"public.{cfg.marker_table}" if cfg.marker_table else ""
    wanted = set(cfg.tables) if cfg.tables is not None else set(found)
    return {name: s for name, s in found.items() if name in wanted and name != skip} | {
        name: TableSum(-1, "") for name in wanted - set(found) if name != skip
    }


async def sums_of(conn: psycopg.AsyncConnection[Any], names: list[str]) -> dict[str, TableSum]:
    """Checksums of just these ``schema.table`` names (rows -1: no such table), summed as
    backup_postgres sums them, so both sides print and sum rows the same way."""
    found: dict[str, TableSum] = {}
    for name in names:
        schema, _, table = name.partition(".")
        try:
            found[name] = await table_sum(conn, schema, table)
        except psycopg.errors.UndefinedTable:
            found[name] = TableSum(-1, "")
    return found


@dataclass
class Comparison:
    problems: list[str]
    compared: int
    changed: list[str]  # moved on the source during the drill: not comparable
    rows: int  # in the copy's compared tables


def compare(
    before: dict[str, TableSum] | None, after: dict[str, TableSum], copy: dict[str, TableSum]
) -> Comparison:
    """Tables in the copy against the source. With ``before`` (a basebackup of a live source),
    only tables whose source checksum did not change from before the backup to after the copy
    was read are judged (a table the copy holds exactly as before is one of them): the copy
    must hold exactly those rows. ``before`` None: ``after`` is
    the source at the backup's own snapshot, and every table is judged."""
    problems: list[str] = []
    changed: list[str] = []
    compared = rows = 0
    for name in sorted(after.keys() | copy.keys()):
        want, got = after.get(name), copy.get(name)
        if before is not None and want is not None and before.get(name) != want:
            changed.append(name)
            continue
        compared += 1
        rows += max(0, got.rows) if got is not None else 0
        problem = _difference(want, got)
        if problem:
            problems.append(f"{name}: {problem}")
    return Comparison(problems, compared, changed, rows)


def _difference(want: TableSum | None, got: TableSum | None) -> str:
    if want is None or want.rows < 0:
        return (
            "no such table in the source" if got is None or got.rows < 0 else "in the copy, not in the source"
        )
    if got is None or got.rows < 0:
        return "in the source, not in the copy"
    if want.rows != got.rows:
        return f"{got.rows} rows in the copy, the source has {want.rows}"
    if want.checksum != got.checksum:
        return f"{got.rows} rows as in the source, but their content differs (checksum)"
    return ""


def one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__
