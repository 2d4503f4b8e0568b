"""Per-table row counts and content checksums of a database, and the manifest that keeps them.

The checksum of a table is the sum of the first 64 bits of md5(row as text) over its rows:
independent of row order (a restore need not keep it), one pass, no sort. The sessions fix
the settings that change how rows print (time zone, date style, float digits), so the source
and the restored copy print the same rows the same way.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg import sql

FORMAT = "maintd-pg-manifest/1"

# The same text for the same row in every session that computes a checksum.
SESSION_OPTIONS = (
    "-c TimeZone=UTC -c DateStyle=ISO,YMD -c IntervalStyle=postgres -c extra_float_digits=1 "
    "-c bytea_output=hex -c statement_timeout=0"
)

_TABLES = """
SELECT n.nspname AS schema, c.relname AS name
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind = 'r'
  AND n.nspname <> 'information_schema' AND n.nspname NOT LIKE 'pg\\_%'
  AND NOT EXISTS (SELECT 1 FROM pg_depend d
                  WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e')
ORDER BY 1, 2
"""

_SUM = (
    "SELECT count(*),"
    " coalesce(sum(('x' || left(md5(ROW(r.*)::text), 16))::bit(64)::bigint::numeric), 0)::text"
    " FROM ONLY {} AS r"
)


@dataclass(frozen=True)
class TableSum:
    rows: int
    checksum: str


async def connect(params: dict[str, Any]) -> psycopg.AsyncConnection[Any]:
    """Raises psycopg.Error when the server cannot be reached or refuses."""
    return await psycopg.AsyncConnection.connect(
        autocommit=True, options=SESSION_OPTIONS, application_name="maintd", **params
    )


async def checksums(conn: psycopg.AsyncConnection[Any]) -> dict[str, TableSum]:
    """``{"schema.table": TableSum}`` for every user table (extensions' own tables left out)."""
    tables = await (await conn.execute(_TABLES)).fetchall()
    return {f"{schema}.{name}": await table_sum(conn, schema, name) for schema, name in tables}


async def table_sum(conn: psycopg.AsyncConnection[Any], schema: str, name: str) -> TableSum:
    """One table's row count and content checksum; raises psycopg.errors.UndefinedTable."""
    row = await (await conn.execute(sql.SQL(_SUM).format(sql.Identifier(schema, name)))).fetchone()
    assert row is not None
    return TableSum(int(row[0]), str(row[1]))


def write_manifest(tables: dict[str, TableSum], database: str, at: datetime, output: str) -> None:
    """Write atomically; raises OSError."""
    doc = {
        "format": FORMAT,
        "database": database,
        "created_at": at.isoformat(),
        "tables": {name: {"rows": t.rows, "checksum": t.checksum} for name, t in tables.items()},
    }
    tmp = f"{output}.tmp-{os.getpid()}"
    try:
        with open(tmp, "w") as f:
            json.dump(doc, f, indent=1)
        os.replace(tmp, output)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def read_manifest(path: str) -> dict[str, TableSum]:
    """Raises ValueError with the file and the reason."""
    try:
        with open(path) as f:
            doc = json.load(f)
        if not isinstance(doc, dict) or doc.get("format") != FORMAT:
            raise ValueError(f"not a {FORMAT} document")
        return {name: TableSum(int(t["rows"]), str(t["checksum"])) for name, t in dict(doc["tables"]).items()}
    except OSError as exc:
        raise ValueError(f"manifest {path}: {exc.strerror or exc}") from None
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"manifest {path}: {exc}") from None


async def dump_with_manifest(params: dict[str, Any], dump: str, fmt: str, output: str, at: datetime) -> str:
    """pg_dump and the manifest from one snapshot, so they agree row for row; returns pg_dump's
    complaint, or "" on success. Raises psycopg.Error (connecting) and OSError (writing)."""
    from maintd.checks.command.process import execute

    async with await connect(params) as conn, conn.transaction():
        await conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        row = await (await conn.execute("SELECT pg_export_snapshot()")).fetchone()
        assert row is not None
        argv = [
            "pg_dump",
            f"--format={fmt}",
            f"--snapshot={row[0]}",
            f"--file={dump}",
            *libpq_args(params),
        ]
        done = await execute(argv, env=libpq_env(params), limit=16_384)
        if done.code != 0:
            return done.output.decode(errors="replace").strip() or f"pg_dump exited {done.code}"
        tables = await checksums(conn)
    write_manifest(tables, str(params.get("dbname", "")), at, output)
    return ""


def libpq_args(params: dict[str, Any], dbname: str | None = None) -> list[str]:
    args = [f"--host={params['host']}", f"--port={params['port']}", f"--dbname={dbname or params['dbname']}"]
    if "user" in params:
        args.append(f"--username={params['user']}")
    return args


def libpq_env(params: dict[str, Any]) -> dict[str, str]:
    """The password travels in the environment, never in an argument list others can read."""
    env = {"PGCONNECT_TIMEOUT": "10"}
    if "password" in params:
        env["PGPASSWORD"] = str(params["password"])
    if "sslmode" in params:
        env["PGSSLMODE"] = str(params["sslmode"])
    return env
