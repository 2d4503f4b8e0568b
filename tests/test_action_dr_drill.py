"""The dr-drill kind on throwaway PostgreSQL clusters on loopback: real pg_basebackup, pg_ctl
promote, pg_dump and pg_restore; each test makes its own primary."""

from __future__ import annotations

import asyncio
import subprocess
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from maintd.checks.base import CheckResult, RunSample, Status
from tests.conftest import T0, run
from tests.kinds import make_target, run_kind
from tests.postgres_support.cluster import BIN, Cluster, pg_primary, scratch_dir

__all__ = ["pg_primary", "scratch_dir"]  # the fixtures

_HANG = "import pathlib, sys, time; pathlib.Path(sys.argv[1]).touch(); time.sleep(60)"
# A failover command that runs two commands: the arguments before "--", then those after it.
_TWO_COMMANDS = (
    "import subprocess, sys; "
    "subprocess.run(sys.argv[1:sys.argv.index('--')], check=True, capture_output=True); "
    "subprocess.run(sys.argv[sys.argv.index('--') + 1:], check=True)"
)
# No braces in it: the failover command's placeholders are {names}.
_WRITE_WAIT_PROMOTE = """
import subprocess, sys, time
source_port, copy_dir, copy_port, pg_ctl, data_dir = sys.argv[1:6]
def psql(host, port, query):
    argv = ["psql", "-X", "-A", "-t", "-h", host, "-p", port, "-U", "postgres", "-d", "postgres", "-c", query]
    return subprocess.run(argv, check=True, capture_output=True, text=True).stdout.split()[-1]
lsn = psql("127.0.0.1", source_port,
           "INSERT INTO customers (name, joined) VALUES ('late', now()); SELECT pg_current_wal_lsn()")
deadline = time.monotonic() + 20
while psql(copy_dir, copy_port, "SELECT pg_last_wal_replay_lsn() >= '%s'" % lsn) != "t":
    assert time.monotonic() < deadline, "the standby never replayed the insert"
    time.sleep(0.02)
subprocess.run([pg_ctl, "-D", data_dir, "-w", "promote"], check=True)
"""
PROMOTE = ["{pg_ctl}", "-D", "{data_dir}", "-w", "-t", "30", "promote"]

_SCHEMA = """
CREATE SCHEMA sales;
CREATE TABLE customers (id serial PRIMARY KEY, name text NOT NULL, joined timestamptz NOT NULL);
CREATE TABLE sales.orders (id serial PRIMARY KEY, customer int REFERENCES customers, amount numeric(10, 2));
INSERT INTO customers (name, joined)
  SELECT 'customer ' || i, timestamptz '2026-01-01 00:00+00' + i * interval '1 hour'
  FROM generate_series(1, 50) i;
INSERT INTO sales.orders (customer, amount) SELECT 1 + i % 50, i * 1.25 FROM generate_series(1, 200) i;
"""


@pytest.fixture
def primary(pg_primary: Cluster) -> Cluster:
    pg_primary.sql(_SCHEMA)
    return pg_primary


def drill(
    primary: Cluster,
    base: Path,
    *,
    dry_run: bool = False,
    history: list[RunSample] | None = None,
    **params: Any,
) -> CheckResult:
    target = make_target(kind="database", connection=primary.connection)
    params = {"bin_dir": str(BIN), "drill_dir": str(base / "drill"), **params}
    done = run_kind("dr-drill", params, target, dry_run=dry_run, history=history or [], timeout=60)
    result: CheckResult = run(done)
    return result


def tables(cluster: Cluster) -> set[str]:
    rows = cluster.sql(
        "SELECT schemaname || '.' || tablename FROM pg_tables"
        " WHERE schemaname NOT IN ('pg_catalog', 'information_schema')"
    )
    return {r[0] for r in rows}


def test_a_standby_promoted_by_the_failover_command_is_verified_with_rto_rpo_and_a_report(
    primary: Cluster, scratch_dir: Path
) -> None:
    reports = scratch_dir / "reports"
    earlier = [RunSample(T0 - timedelta(days=30), Status.ok, {"rto_seconds": 42.0, "rpo_seconds": 0.5})]
    result = drill(
        primary, scratch_dir, standby=True, failover_command=PROMOTE, report_dir=str(reports), history=earlier
    )
    assert result.status is Status.ok, result.output
    lines = result.output.splitlines()
    assert lines[0].startswith(
        f"DR drill of 127.0.0.1:{primary.port}/postgres (basebackup, standby + failover): "
        "restored and verified, RTO "
    )
    assert "failover: " + str(BIN / "pg_ctl") + " promoted the copy (out of recovery)" in lines
    assert "2 tables (250 rows in the copy): row counts and checksums match" in lines
    assert any(line.startswith("RPO ") and "the marker in public.maintd_dr_marker" in line for line in lines)
    for name in ("rto", "rpo", "backup", "start", "promote", "verify"):
        assert f"{name}_seconds" in result.metrics
    assert (
        result.metrics["rto_seconds"] >= result.metrics["backup_seconds"] + result.metrics["promote_seconds"]
    )
    assert [c.action for c in result.changes] == [
        "create",
        "mark",
        "basebackup",
        "start",
        "mark",
        "failover",
        "stop",
        "remove",
        "report",
        "report",
    ]
    assert not (scratch_dir / "drill").exists()
    assert sorted(p.name for p in reports.iterdir()) == [
        "dr-probe-t1-20261127T010000Z.html",
        "dr-probe-t1-20261127T010000Z.md",
    ]
    text = (reports / "dr-probe-t1-20261127T010000Z.md").read_text()
    assert "| 2026-10-28T01:00:00+00:00 | ok | 42.0s | 0.5s |" in text  # the earlier drill
    assert "| promote |" in text


def test_a_plain_basebackup_drill_starts_the_copy_and_leaves_nothing_running(
    primary: Cluster, scratch_dir: Path
) -> None:
    result = drill(primary, scratch_dir, report_dir=None, max_rto={"critical": "0s"})
    assert result.status is Status.critical  # only the RTO limit: 0s
    assert result.output.splitlines()[-1].startswith("RTO ") and result.output.endswith(
        "is over max_rto critical 0.0s"
    )
    assert "2 tables (250 rows in the copy): row counts and checksums match" in result.output
    assert "promote_seconds" not in result.metrics
    assert not (scratch_dir / "drill").exists()


def test_a_drill_whose_source_is_down_fails_with_the_reason_and_touches_nothing(
    primary: Cluster, scratch_dir: Path
) -> None:
    primary.stop()
    result = drill(primary, scratch_dir)
    assert result.status is Status.critical
    line = result.output.splitlines()[1]
    assert line.startswith(f"PostgreSQL at 127.0.0.1:{primary.port}/postgres: cannot connect: ")
    assert "Connection refused" in line
    assert result.output.splitlines()[0].endswith(": failed")
    assert result.changes == []
    assert not (scratch_dir / "drill").exists()


def test_a_dry_run_says_what_it_would_do_and_changes_nothing(primary: Cluster, scratch_dir: Path) -> None:
    before = tables(primary)
    result = drill(
        primary,
        scratch_dir,
        dry_run=True,
        standby=True,
        failover_command=PROMOTE,
        report_dir=str(scratch_dir / "r"),
    )
    assert result.status is Status.ok
    assert result.output.splitlines()[1].startswith(
        f"dry run: would create {scratch_dir / 'drill'}, "
        f"mark 127.0.0.1:{primary.port}/postgres public.maintd_dr_marker, basebackup "
    )
    assert [c.action for c in result.changes] == [
        "create",
        "mark",
        "basebackup",
        "start",
        "failover",
        "stop",
        "remove",
        "report",
    ]
    assert tables(primary) == before  # no marker table
    assert list(scratch_dir.iterdir()) == []


def test_a_failing_failover_command_is_reported_and_the_copy_is_torn_down(
    primary: Cluster, scratch_dir: Path
) -> None:
    reports = scratch_dir / "reports"
    failing = ["{pg_ctl}", "-D", "{drill_dir}/nowhere", "promote"]
    result = drill(primary, scratch_dir, standby=True, failover_command=failing, report_dir=str(reports))
    assert result.status is Status.critical
    assert f"failover command {BIN / 'pg_ctl'} failed (exit 1): " in result.output
    assert "nowhere" in result.output
    failover = next(c for c in result.changes if c.action == "failover")
    assert failover.detail["succeeded"] is False
    assert [c.action for c in result.changes][-4:] == ["stop", "remove", "report", "report"]
    assert not (scratch_dir / "drill").exists()
    page = next(reports.glob("*.html")).read_text()
    assert ": failed</strong>" in page
    assert "nowhere&quot;" in page and 'nowhere"' not in page  # pg_ctl's quotes, escaped


def test_a_missing_program_fails_before_anything_is_touched(primary: Cluster, scratch_dir: Path) -> None:
    result = drill(primary, scratch_dir, bin_dir=str(scratch_dir))
    assert (
        result.output.splitlines()[1]
        == f"pg_basebackup not found: {scratch_dir}/pg_basebackup: No such file or directory"
    )
    assert (result.status, result.changes) == (Status.critical, [])
    assert "maintd_dr_marker" not in str(tables(primary))


def test_a_drill_dir_not_made_by_a_drill_is_refused_and_kept(primary: Cluster, scratch_dir: Path) -> None:
    precious = scratch_dir / "drill" / "precious.txt"
    precious.parent.mkdir()
    precious.write_text("keep me")
    result = drill(primary, scratch_dir)
    assert result.status is Status.critical
    assert (
        f"drill_dir {scratch_dir / 'drill'} exists and was not made by a drill (no MAINTD_DR_DRILL file): "
        "refusing to use or remove it"
    ) in result.output
    assert precious.read_text() == "keep me"


def test_a_cancelled_drill_still_stops_the_copy_and_removes_its_directory(
    primary: Cluster, scratch_dir: Path
) -> None:
    root = scratch_dir / "drill"
    # Touches a file, then hangs: the drill is cancelled while its failover runs.
    hang = ["/usr/bin/python3", "-c", _HANG, "{drill_dir}/promoting"]

    async def cancel_during_failover() -> None:
        target = make_target(kind="database", connection=primary.connection)
        params = {"bin_dir": str(BIN), "drill_dir": str(root), "standby": True, "failover_command": hang}
        task = asyncio.create_task(run_kind("dr-drill", params, target, timeout=60))
        deadline = asyncio.get_running_loop().time() + 20
        while not (root / "promoting").exists():
            assert asyncio.get_running_loop().time() < deadline, "the drill never reached its failover"
            await asyncio.sleep(0.02)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    run(cancel_during_failover())
    assert not root.exists()


def test_a_dump_drill_restores_into_a_scratch_database_and_compares_at_the_dump_snapshot(
    primary: Cluster, scratch_dir: Path
) -> None:
    scratch = f"maintd_dr_{uuid.uuid4().hex[:8]}"
    result = drill(primary, scratch_dir, method="dump", scratch_database=scratch, max_rpo={"warning": "1h"})
    assert result.status is Status.ok, result.output
    assert "2 tables (250 rows in the copy): row counts and checksums match" in result.output
    assert {"rto_seconds", "rpo_seconds", "backup_seconds", "restore_seconds"} <= result.metrics.keys()
    assert [c.action for c in result.changes] == ["create", "mark", "dump", "restore", "drop", "remove"]
    assert not primary.sql("SELECT 1 FROM pg_database WHERE datname = %s", scratch)
    assert not (scratch_dir / "drill").exists()


def test_the_plan_rejects_a_failover_command_with_an_unknown_placeholder() -> None:
    with pytest.raises(ValueError, match="unknown placeholder"):
        run(run_kind("dr-drill", {"standby": True, "failover_command": ["{pg_ctl}", "{shell}"]}))
    with pytest.raises(ValueError, match="go together"):
        run(run_kind("dr-drill", {"standby": True}))


def _psql(host: str, port: str, statement: str) -> list[str]:
    return ["psql", "-X", "-h", host, "-p", port, "-U", "postgres", "-d", "postgres", "-c", statement]


def test_a_copy_whose_rows_differ_from_the_source_is_critical_and_names_the_table(
    primary: Cluster, scratch_dir: Path
) -> None:
    # Promote first, then change one row in the copy (never the source): a corrupt restore.
    tamper = ["/usr/bin/python3", "-c", _TWO_COMMANDS, *PROMOTE, "--"]
    tamper += _psql("{drill_dir}", "{port}", "UPDATE sales.orders SET amount = 0 WHERE id = 7")
    result = drill(
        primary, scratch_dir, standby=True, failover_command=tamper, tables=["sales.orders", "public.nope"]
    )
    assert result.status is Status.critical
    assert result.output.splitlines()[-3:-1] == [
        "public.nope: no such table in the source",
        "sales.orders: 200 rows as in the source, but their content differs (checksum)",
    ]
    assert result.metrics["tables_differing"] == 2
    assert not (scratch_dir / "drill").exists()


def test_a_table_written_on_the_source_during_the_drill_is_not_compared(
    primary: Cluster, scratch_dir: Path
) -> None:
    # Insert on the source, wait (bounded) until the standby has replayed it, then promote.
    failover = ["/usr/bin/python3", "-c", _WRITE_WAIT_PROMOTE, str(primary.port), "{drill_dir}", "{port}"]
    failover += ["{pg_ctl}", "{data_dir}"]
    result = drill(primary, scratch_dir, standby=True, failover_command=failover)
    assert result.status is Status.ok, result.output
    assert "changed on the source during the drill, not compared: public.customers" in result.output
    assert "1 table (200 rows in the copy): row counts and checksums match" in result.output
    assert result.metrics["tables_changed"] == 1


def test_a_drill_dir_that_cannot_be_made_is_critical_with_the_reason(
    primary: Cluster, scratch_dir: Path
) -> None:
    locked = scratch_dir / "locked"
    locked.mkdir()
    subprocess.run(["chattr", "+i", str(locked)], check=True)  # refused even to root
    try:
        result = drill(primary, scratch_dir, drill_dir=str(locked / "drill"))
    finally:
        subprocess.run(["chattr", "-i", str(locked)], check=True)
    assert result.status is Status.critical
    assert result.output.splitlines()[1] == f"drill_dir {locked / 'drill'}: Operation not permitted"
    assert "maintd_dr_marker" not in str(tables(primary))
    assert list(locked.iterdir()) == []


def test_what_a_crashed_drill_left_is_removed_and_the_drill_runs_again(
    primary: Cluster, scratch_dir: Path
) -> None:
    root = scratch_dir / "drill"
    (root / "data").mkdir(parents=True)
    (root / "MAINTD_DR_DRILL").write_text("made by maintd dr-drill probe/t1\n")
    (root / "data" / "half-copied").write_text("x")
    first = drill(primary, scratch_dir)
    second = drill(primary, scratch_dir)
    assert (first.status, second.status) == (Status.ok, Status.ok), first.output + second.output
    assert not root.exists()
    assert primary.sql("SELECT count(*) FROM public.maintd_dr_marker") == [
        (1,)
    ]  # one row per task and target


def test_a_scratch_database_not_made_by_a_drill_is_never_dropped(primary: Cluster, scratch_dir: Path) -> None:
    primary.sql("CREATE DATABASE precious")
    result = drill(primary, scratch_dir, method="dump", scratch_database="precious")
    assert result.status is Status.critical
    assert (
        f"scratch database precious on 127.0.0.1:{primary.port} exists and was not made by a drill "
        "(no comment 'maintd dr-drill scratch'): refusing to drop it"
    ) in result.output
    assert primary.sql("SELECT 1 FROM pg_database WHERE datname = 'precious'") == [(1,)]
    assert not (scratch_dir / "drill").exists()


def test_rpo_from_a_query_for_the_newest_data_is_judged_against_max_rpo(
    primary: Cluster, scratch_dir: Path
) -> None:
    # The newest customer joined on 2026-01-03 02:00 UTC: months before the drill.
    result = drill(
        primary,
        scratch_dir,
        method="dump",
        scratch_database=f"maintd_dr_{uuid.uuid4().hex[:8]}",
        rpo_query="SELECT max(joined) FROM customers",
        max_rpo={"warning": "1h", "critical": "30d"},
    )
    assert result.status is Status.critical
    assert "the newest data that came back (rpo_query) is from 2026-01-03T02:00:00+00:00" in result.output
    assert result.metrics["rpo_seconds"] > 300 * 86400
    assert result.output.splitlines()[-1].startswith("RPO ")
    assert result.output.endswith("is over max_rpo critical 30d")
