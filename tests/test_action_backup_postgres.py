"""The backup-postgres kind on the machine's PostgreSQL: real pg_dump archives restored and compared."""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict
from typer.testing import CliRunner

from maintd.checks.base import CheckResult, RunSample, Status
from maintd.cli.app import app
from tests.conftest import PG_ADMIN_URL, T0, run
from tests.kinds import make_target, run_kind

_ADMIN = conninfo_to_dict(PG_ADMIN_URL)
HOST, PORT, USER = (
    _ADMIN.get("host", "127.0.0.1"),
    int(_ADMIN.get("port", 5432)),
    _ADMIN.get("user", "postgres"),
)

_SCHEMA = """
CREATE SCHEMA sales;
CREATE TABLE customers (id serial PRIMARY KEY, name text NOT NULL, joined timestamptz NOT NULL);
CREATE TABLE sales.orders (id serial PRIMARY KEY, customer int REFERENCES customers,
                           amount numeric(10, 2), ratio double precision, note jsonb);
INSERT INTO customers (name, joined)
  SELECT 'customer ' || i, timestamptz '2026-01-01 00:00+00' + i * interval '1 hour'
  FROM generate_series(1, 50) i;
INSERT INTO sales.orders (customer, amount, ratio, note)
  SELECT 1 + i % 50, i * 1.25, i / 7.0, jsonb_build_object('i', i) FROM generate_series(1, 200) i;
"""


def admin_execute(statement: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        cur = conn.execute(statement)
        return cur.fetchall() if cur.description else []


def database_exists(name: str) -> bool:
    return bool(admin_execute(f"SELECT 1 FROM pg_database WHERE datname = '{name}'"))


@pytest.fixture
def source() -> Iterator[str]:
    name = f"maintd_src_{uuid.uuid4().hex[:8]}"
    admin_execute(f'CREATE DATABASE "{name}"')
    with psycopg.connect(host=HOST, port=PORT, user=USER, dbname=name, autocommit=True) as conn:
        conn.execute(_SCHEMA)
    yield name
    admin_execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def in_source(source: str, statement: str) -> None:
    with psycopg.connect(host=HOST, port=PORT, user=USER, dbname=source, autocommit=True) as conn:
        conn.execute(statement)


def pg_dump_argv(source: str, path: Path, fmt: str = "custom") -> list[str]:
    return [
        "pg_dump",
        f"--format={fmt}",
        f"--file={path}",
        f"--host={HOST}",
        f"--port={PORT}",
        f"--username={USER}",
        source,
    ]


def make_dump(source: str, path: Path, fmt: str = "custom") -> Path:
    subprocess.run(pg_dump_argv(source, path, fmt), check=True, capture_output=True)
    written = (T0 - timedelta(hours=1)).timestamp()  # an hour before the tests' clock
    os.utime(path / "toc.dat" if fmt == "directory" else path, (written, written))
    return path


def verify(
    source: str,
    dump: Path,
    *,
    port: int = PORT,
    dry_run: bool = False,
    history: list[RunSample] | None = None,
    **params: Any,
) -> CheckResult:
    target = make_target(
        kind="database", connection={"host": HOST, "port": port, "user": USER, "database": source}
    )
    params = {"dump": str(dump), **params}
    return run(
        run_kind("backup-postgres", params, target, dry_run=dry_run, history=history or [], timeout=120)
    )


@pytest.fixture
def scratch() -> Iterator[str]:
    name = f"maintd_verify_{uuid.uuid4().hex[:8]}"
    yield name
    admin_execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.mark.parametrize("fmt", ["custom", "directory"])
def test_a_good_dump_restores_and_matches_the_source(source: str, scratch: str, tmp_path: Path, fmt: str):
    dump = make_dump(source, tmp_path / "db.dump", fmt)
    result = verify(source, dump, scratch_database=scratch, jobs=2)
    assert result.status is Status.ok, result.output
    lines = result.output.splitlines()
    assert lines[0].startswith(f"dump {dump} ({fmt}, ") and lines[0].endswith(", 1.0h old)")
    assert lines[1].startswith(f"restored into {HOST}:{PORT}/{scratch} in ")
    assert lines[1].endswith(": 2 tables, 250 rows")
    assert lines[2] == "every table's row count and checksum match the source"
    assert [c.action for c in result.changes] == ["restore", "drop"]
    assert not database_exists(scratch)


def test_a_corrupt_dump_is_critical_and_the_scratch_database_is_dropped(
    source: str, scratch: str, tmp_path: Path
):
    dump = make_dump(source, tmp_path / "db.dump")
    os.truncate(dump, dump.stat().st_size // 2)
    result = verify(source, dump, scratch_database=scratch)
    assert result.status is Status.critical
    line = result.output.splitlines()[1]
    assert line.startswith(f"restore into {HOST}:{PORT}/{scratch} failed (exit 1): pg_restore: error: ")
    assert not database_exists(scratch)


def test_a_file_that_is_no_dump_is_critical(source: str, tmp_path: Path):
    (tmp_path / "db.dump").write_text("SELECT 1;\n")
    assert verify(source, tmp_path / "db.dump").output == (
        f"dump {tmp_path / 'db.dump'}: no PGDMP header, not a pg_dump custom-format archive"
    )
    assert (
        verify(source, tmp_path / "none.dump").output
        == f"dump {tmp_path / 'none.dump'}: No such file or directory"
    )


def test_a_dump_older_than_max_age_is_critical(source: str, tmp_path: Path):
    dump = make_dump(source, tmp_path / "db.dump")
    result = verify(source, dump, max_age="30m", restore=False)
    assert (result.status, result.output.splitlines()[1]) == (Status.critical, "older than max_age 30m")


def test_a_dump_far_below_the_recent_sizes_is_a_warning(source: str, tmp_path: Path):
    dump = make_dump(source, tmp_path / "db.dump")
    size = dump.stat().st_size
    history = [RunSample(T0 - timedelta(days=d), Status.ok, {"dump_bytes": 10.0 * size}) for d in range(1, 6)]
    result = verify(source, dump, restore=False, history=history)
    assert result.status is Status.warning
    assert (
        "is 10% of the median" in result.output and "of the last 5 runs (warning under 50%)" in result.output
    )
    assert verify(source, dump, restore=False, history=history[:1]).status is Status.ok  # too few to judge


def test_a_dump_time_manifest_still_matches_after_the_source_changed(
    source: str, scratch: str, tmp_path: Path
):
    dump, manifest = tmp_path / "db.dump", tmp_path / "db.manifest.json"
    url = f"host={HOST} port={PORT} user={USER} dbname={source}"
    done = CliRunner().invoke(app, ["backup", "pg-manifest", url, "-o", str(manifest), "--dump", str(dump)])
    assert done.exit_code == 0, done.output
    assert "2 tables, 250 rows" in done.output
    in_source(source, "INSERT INTO customers (name, joined) VALUES ('late', now())")
    in_source(source, "UPDATE sales.orders SET note = '{}' WHERE id = 7")

    against_manifest = verify(
        source, dump, scratch_database=scratch, compare="manifest", manifest=str(manifest)
    )
    assert against_manifest.status is Status.ok, against_manifest.output
    assert against_manifest.output.endswith("every table's row count and checksum match the manifest")

    against_source = verify(source, dump, scratch_database=scratch)
    assert against_source.status is Status.critical
    assert against_source.output.splitlines()[2:] == [
        "public.customers: 50 rows restored, the source has 51",
        "sales.orders: 200 rows as in the source, but their content differs (checksum)",
    ]


def test_the_immediate_backup_runs_on_failure_and_its_dump_is_verified(
    source: str, scratch: str, tmp_path: Path
):
    dump = make_dump(source, tmp_path / "db.dump")
    os.truncate(dump, 100)
    result = verify(source, dump, scratch_database=scratch, backup_command=pg_dump_argv(source, dump))
    assert result.status is Status.critical
    assert "immediate backup: command succeeded; its backup verified ok: dump " in result.output
    assert result.output.endswith("every table's row count and checksum match the source")
    assert result.metrics["immediate_backup_verified"] == 1
    assert [c.action for c in result.changes] == ["restore", "drop", "backup", "restore", "drop"]
    assert not database_exists(scratch)


def test_a_database_that_is_down_is_critical_with_the_reason(source: str, tmp_path: Path):
    dump = make_dump(source, tmp_path / "db.dump")
    result = verify(source, dump, port=1)
    assert result.status is Status.critical
    line = result.output.splitlines()[1]
    assert line.startswith(f"PostgreSQL at {HOST}:1/{source}: cannot connect: ")
    assert "Connection refused" in line


def test_a_dry_run_restores_nothing_and_reports_the_plan(source: str, tmp_path: Path):
    dump = make_dump(source, tmp_path / "db.dump")
    result = verify(source, dump, dry_run=True)
    assert result.status is Status.ok
    assert result.output.splitlines()[1] == (
        f"dry run: would restore it into {HOST}:{PORT}/maintd_verify_t1, compare with the source {source}, "
        "then drop maintd_verify_t1"
    )
    assert [c.action for c in result.changes] == ["restore", "drop"]
    assert not database_exists("maintd_verify_t1")


def test_the_plan_rejects_an_unsafe_scratch_name():
    with pytest.raises(ValueError, match="lower-case letters"):
        run(run_kind("backup-postgres", {"dump": "/x", "scratch_database": 'x"; DROP'}))
