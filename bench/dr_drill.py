"""Benchmark ``dr-drill``: the DR drill of a 1 GB PostgreSQL database, RTO and its phases.

A primary of its own (initdb, fsync off, ``pgbench -i -s 70``: about 1 GB; --quick: -s 7) is
made once under ``$MAINTD_BENCH_DR_DIR`` (default /tmp/maintd-bench-dr), kept between runs,
and started on a free loopback port for the run. The ``dr-drill`` kind then drills it through
its own ``run`` (basebackup into a streaming standby, ``pg_ctl promote`` as the failover command,
every table's row count and checksum compared): 3 times, the median RTO is the figure; plain
basebackup (no standby) once beside it. The target is that RTO is recorded and the drill passes.

    python -m bench --only dr-drill        # or: python -m bench.dr_drill [--quick]
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import statistics
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

from bench.common import T0, Result, Shape
from maintd.checks.base import CheckResult, Resources, RunContext
from maintd.clock import FakeClock
from maintd.plan.models import Target, Task
from maintd.tasks.dr_drill import KIND, DrDrillConfig

BIN = Path(os.environ.get("MAINTD_BENCH_PG_BIN", "/usr/lib/postgresql/15/bin"))
TARGET = "RTO recorded, drill ok"
REPEATS = 3
PHASES = ("baseline", "backup", "start", "replay", "promote", "verify")
PROMOTE = ["{pg_ctl}", "-D", "{data_dir}", "-w", "-t", "120", "promote"]


def run(url: str, store_kind: str, shape: Shape, quick: bool) -> list[Result]:
    scale = 7 if quick else 70
    root = Path(os.environ.get("MAINTD_BENCH_DR_DIR", "/tmp/maintd-bench-dr"))
    data = make_primary(root, scale)
    port = _free_port()
    _as_postgres(
        [str(BIN / "pg_ctl"), "-D", str(data), "-o", f"-p {port}", "-l", f"{data}.log", "-w", "start"]
    )
    try:
        size = int(_psql(port, "SELECT pg_database_size('bench')"))
        standby = [_drill(root, port, standby=True) for _ in range(1 if quick else REPEATS)]
        plain = _drill(root, port, standby=False)
    finally:
        _as_postgres([str(BIN / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"])
    return [_result("standby + promote", standby, size), _result("plain basebackup", [plain], size)]


def make_primary(root: Path, scale: int) -> Path:
    """The pgbench database, made once (kept between runs)."""
    data = root / f"primary-s{scale}"
    if (data / "BENCH_READY").exists():
        return data
    shutil.rmtree(data, ignore_errors=True)
    root.mkdir(parents=True, exist_ok=True)
    if os.geteuid() == 0:
        shutil.chown(root, "postgres", "postgres")
    _as_postgres([str(BIN / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "-N", "-E", "UTF8"])
    with (data / "postgresql.conf").open("a") as conf:
        conf.write(
            "\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '/tmp'\nwal_level = replica\n"
            "max_wal_senders = 5\nfsync = off\nfull_page_writes = off\nmax_wal_size = 4GB\n"
        )
    port = _free_port()
    _as_postgres(
        [str(BIN / "pg_ctl"), "-D", str(data), "-o", f"-p {port}", "-l", f"{data}.log", "-w", "start"]
    )
    try:
        _psql(port, "CREATE DATABASE bench", dbname="postgres")
        pgbench = [str(BIN / "pgbench"), "-i", "-q", "-s", str(scale), "-h", "127.0.0.1", "-p", str(port)]
        _as_postgres([*pgbench, "-U", "postgres", "bench"])
        _psql(port, "VACUUM ANALYZE")
    finally:
        _as_postgres([str(BIN / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"])
    (data / "BENCH_READY").write_text(f"pgbench -s {scale}\n")
    return data


def _drill(root: Path, port: int, *, standby: bool) -> CheckResult:
    params: dict[str, Any] = {"bin_dir": str(BIN), "drill_dir": str(root / "drill")}
    if standby:
        params.update(standby=True, failover_command=PROMOTE)
    config = DrDrillConfig.model_validate(params)
    task = Task.model_validate(
        {"name": "dr", "kind": KIND.name, "targets": ["db"], "schedule": {"every": "30d"}}
    )
    connection = {"host": "127.0.0.1", "port": port, "user": "postgres", "database": "bench"}
    target = Target.model_validate({"name": "db", "kind": "database", "connection": connection})

    async def once() -> CheckResult:
        clock = FakeClock(T0)
        async with Resources.open() as resources:
            ctx = RunContext(task, target, config, clock, clock.now() + timedelta(hours=1), resources)
            return await KIND.build(config).run(ctx)

    return asyncio.run(once())


def _result(case: str, runs: list[CheckResult], size: int) -> Result:
    ok = all(r.metrics.get("rto_seconds") is not None and r.status.value == "ok" for r in runs)
    if not ok:
        bad = next(r for r in runs if r.status.value != "ok" or "rto_seconds" not in r.metrics)
        return Result("dr-drill", "-", case, "failed", TARGET, False, bad.output.replace("\n", " | ")[:300])
    runs = sorted(runs, key=lambda r: r.metrics["rto_seconds"])
    chosen = runs[len(runs) // 2]
    m = chosen.metrics
    phases = ", ".join(f"{p} {m[p + '_seconds']:.2f}s" for p in PHASES if f"{p}_seconds" in m)
    rtos = [r.metrics["rto_seconds"] for r in runs]
    note = (
        f"{size / 1e9:.2f} GB database, {m['rows']:,.0f} rows in {m['tables_compared']:.0f} tables; "
        f"phases: {phases}; RPO {m.get('rpo_seconds', float('nan')):.3f}s; "
        f"RTO {', '.join(f'{r:.1f}' for r in rtos)} s (median of {len(runs)})"
    )
    return Result(
        "dr-drill",
        "-",
        case,
        f"RTO {statistics.median(rtos):.1f} s",
        TARGET,
        True,
        note,
        details={"rto_s": rtos, "metrics": m, "bytes": size},
    )


def _as_postgres(argv: list[str]) -> None:
    wrapped = ["runuser", "-u", "postgres", "--", *argv] if os.geteuid() == 0 else argv
    subprocess.run(wrapped, check=True, cwd="/tmp", stdout=subprocess.DEVNULL, timeout=3600)


def _psql(port: int, query: str, dbname: str = "bench") -> str:
    argv = ["psql", "-X", "-A", "-t", "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "-d", dbname]
    done = subprocess.run([*argv, "-c", query], check=True, capture_output=True, text=True, timeout=3600)
    return done.stdout.strip()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


if __name__ == "__main__":
    for r in run("", "-", Shape("flat", 0, 0, 0), "--quick" in sys.argv):
        print(f"{r.shape}: {r.result} ({'pass' if r.passed else 'FAIL'}): {r.note}")
