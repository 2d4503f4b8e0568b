"""``maintd backup manifest`` and ``maintd backup pg-manifest``: what a backup job runs at backup
time, so the ``backup-files`` and ``backup-postgres`` kinds can verify the backup later."""

from __future__ import annotations

import time
from enum import StrEnum
from typing import Any

import typer

from maintd.cli.common import console, fail
from maintd.clock import SystemClock

app = typer.Typer(help="Backups: write the manifests the backup kinds verify.", no_args_is_help=True)


class Algo(StrEnum):
    blake3 = "blake3"
    sha256 = "sha256"


@app.command()
def manifest(
    path: str = typer.Argument(..., help="The backup directory: every file under it is listed."),
    algo: Algo = typer.Option(Algo.blake3, "--algo", help="blake3 (faster) or sha256."),
    output: str = typer.Option(..., "-o", "--output", help="Where to write the manifest (JSON)."),
    threads: int = typer.Option(0, "--threads", min=0, help="Files hashed at once (0: one per CPU)."),
) -> None:
    """Write a manifest of PATH: each file's path, size and digest (the manifest itself left out)."""
    from maintd.tasks.backup_files import manifest as files

    started = time.perf_counter()
    try:
        made = files.build(path, algo.value, SystemClock().now(), skip=output, threads=threads)
        files.write(made, output)
    except files.ManifestError as exc:
        fail(str(exc))
    size = sum(e.size for e in made.files)
    seconds = time.perf_counter() - started
    console.print(
        f"{output}: {len(made.files)} files, {size / 2**20:.1f} MiB ({algo.value}) in {seconds:.2f}s",
        highlight=False,
    )


class DumpFormat(StrEnum):
    custom = "custom"
    directory = "directory"


@app.command("pg-manifest")
def pg_manifest(
    database: str = typer.Argument(..., help="The source database: a libpq URL or key=value string."),
    output: str = typer.Option(..., "-o", "--output", help="Where to write the table manifest (JSON)."),
    dump: str | None = typer.Option(
        None, "--dump", help="Also run pg_dump to this path, from the same snapshot as the manifest."
    ),
    fmt: DumpFormat = typer.Option(DumpFormat.custom, "--format", help="pg_dump format with --dump."),
) -> None:
    """Write each table's row count and checksum, for backup-postgres's compare: manifest.

    With --dump, pg_dump runs inside the manifest's snapshot (pg_export_snapshot), so the dump and
    the manifest agree row for row however busy the database is. The password comes from
    PGPASSWORD or ~/.pgpass, never the command line."""
    import asyncio

    import psycopg
    from psycopg.conninfo import conninfo_to_dict

    from maintd.tasks.backup_postgres import tables

    try:
        params = {"host": "127.0.0.1", "port": 5432, "dbname": "postgres", **conninfo_to_dict(database)}
    except psycopg.Error as exc:
        fail(f"not a connection string: {exc}")
    started = time.perf_counter()
    try:
        if dump:
            problem = asyncio.run(
                tables.dump_with_manifest(params, dump, fmt.value, output, SystemClock().now())
            )
            if problem:
                fail(f"pg_dump failed: {problem}")
        else:
            asyncio.run(_manifest_only(params, output))
    except psycopg.Error as exc:
        fail(
            f"PostgreSQL at {params['host']}:{params['port']}/{params['dbname']}: "
            + " ".join(str(exc).split())
        )
    except OSError as exc:
        fail(f"{exc.filename or output}: {exc.strerror or exc}")
    done = tables.read_manifest(output)
    rows = sum(t.rows for t in done.values())
    console.print(
        f"{output}: {len(done)} tables, {rows} rows in {time.perf_counter() - started:.2f}s"
        + (f"; dump {dump}" if dump else ""),
        highlight=False,
    )


async def _manifest_only(params: dict[str, Any], output: str) -> None:
    from maintd.tasks.backup_postgres import tables

    async with await tables.connect(params) as conn:
        found = await tables.checksums(conn)
    tables.write_manifest(found, str(params["dbname"]), SystemClock().now(), output)
