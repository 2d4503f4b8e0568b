"""Inspect the dump (format, size, age), restore it into a scratch database, compare, drop."""

from __future__ import annotations

import os
import statistics
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import psycopg
from psycopg import sql

from maintd.checks.base import Change, CheckResult, RunContext, Status, format_bytes
from maintd.checks.command.process import execute
from maintd.checks.postgres.check import libpq_params
from maintd.plan.types import format_duration
from maintd.tasks.backup_files.immediate import after_failure
from maintd.tasks.backup_postgres import BackupPostgresConfig
from maintd.tasks.backup_postgres.tables import (
    TableSum,
    checksums,
    connect,
    libpq_args,
    libpq_env,
    read_manifest,
)

OUTPUT_LIMIT = 16_384


@dataclass
class Report:
    status: Status = Status.ok
    lines: list[str] = field(default_factory=list)
    metrics: dict[str, float] = field(default_factory=dict)
    changes: list[Change] = field(default_factory=list)

    def add(self, status: Status, line: str) -> None:
        self.status = max(self.status, status, key=lambda s: s.rank)
        self.lines.append(line)

    def result(self, head: str) -> CheckResult:
        return CheckResult(self.status, "\n".join([head, *self.lines]), self.metrics, self.changes)


@dataclass(frozen=True)
class Dump:
    path: str
    format: str  # custom | directory
    size: int
    written: datetime


async def run(cfg: BackupPostgresConfig, ctx: RunContext) -> CheckResult:
    first = await verify(cfg, ctx, trend=True)
    return await after_failure(first, cfg.backup_command, ctx, lambda: verify(cfg, ctx, trend=False))


def _params(cfg: BackupPostgresConfig, ctx: RunContext) -> dict[str, Any]:
    return {"host": "127.0.0.1"} | libpq_params(cfg, ctx)


def inspect(path: str) -> Dump | str:
    """The dump's format, size and time written, or why it is not a dump."""
    try:
        if os.path.isdir(path):
            toc = os.path.join(path, "toc.dat")
            if not os.path.isfile(toc):
                return f"dump {path}: a directory without toc.dat, not a pg_dump directory-format dump"
            size = sum(e.stat().st_size for e in os.scandir(path) if e.is_file())
            return Dump(path, "directory", size, _mtime(toc))
        with open(path, "rb") as f:
            magic = f.read(5)
        if magic != b"PGDMP":
            return f"dump {path}: no PGDMP header, not a pg_dump custom-format archive"
        return Dump(path, "custom", os.path.getsize(path), _mtime(path))
    except OSError as exc:
        return f"dump {path}: {exc.strerror or exc}"


def _mtime(path: str) -> datetime:
    return datetime.fromtimestamp(os.stat(path).st_mtime, UTC)


async def verify(cfg: BackupPostgresConfig, ctx: RunContext, *, trend: bool) -> CheckResult:
    path = cfg.dump or ctx.target.connection.get("dump")
    if not path:
        return CheckResult(
            Status.unknown, f"no dump: set params.dump or target {ctx.target.name}'s connection.dump"
        )
    dump = inspect(str(path))
    if isinstance(dump, str):
        return CheckResult(Status.critical, dump)
    report = Report()
    age = ctx.clock.now() - dump.written
    report.metrics.update(dump_bytes=float(dump.size), age_seconds=round(age.total_seconds(), 3))
    head = (
        f"dump {dump.path} ({dump.format}, {format_bytes(dump.size)}, {age.total_seconds() / 3600:.1f}h old)"
    )
    if cfg.max_age is not None and age > cfg.max_age:
        report.add(Status.critical, f"older than max_age {format_duration(cfg.max_age)}")
    if trend:
        await _size_trend(cfg, ctx, dump, report)
    if not cfg.restore:
        return report.result(head)
    params = _params(cfg, ctx)
    if cfg.password_secret in ctx.target.secrets:
        try:
            params["password"] = ctx.secret(cfg.password_secret)
        except LookupError as exc:
            return CheckResult(Status.unknown, f"{head}: {exc}")
    scratch = cfg.scratch_database or _default_scratch(ctx.target.name)
    where = f"{params['host']}:{params['port']}/{scratch}"
    against = {"source": f"the source {params['dbname']}", "manifest": f"the manifest {cfg.manifest}"}
    if ctx.dry_run:
        versus = f", compare with {against[cfg.compare]}" if cfg.compare != "none" else ""
        report.changes += [Change("restore", where, {"dump": dump.path}), Change("drop", where)]
        return report.result(f"{head}\ndry run: would restore it into {where}{versus}, then drop {scratch}")
    await _restore_and_compare(cfg, ctx, dump, params, scratch, report)
    return report.result(head)


async def _size_trend(cfg: BackupPostgresConfig, ctx: RunContext, dump: Dump, report: Report) -> None:
    sizes = [
        s.metrics["dump_bytes"] for s in await ctx.history(cfg.size_trend_runs) if "dump_bytes" in s.metrics
    ]
    if cfg.size_warn_ratio is None or len(sizes) < 2:
        return
    usual = statistics.median(sizes)
    if dump.size < cfg.size_warn_ratio * usual:
        report.add(
            Status.warning,
            f"{format_bytes(dump.size)} is {100 * dump.size / usual:.0f}% of the median "
            f"{format_bytes(usual)} of the "
            f"last {len(sizes)} runs (warning under {100 * cfg.size_warn_ratio:g}%)",
        )


async def _restore_and_compare(
    cfg: BackupPostgresConfig,
    ctx: RunContext,
    dump: Dump,
    params: dict[str, Any],
    scratch: str,
    report: Report,
) -> None:
    where = f"{params['host']}:{params['port']}/{scratch}"
    expected: dict[str, TableSum] | None = None
    if cfg.compare == "manifest":
        try:
            expected = read_manifest(str(cfg.manifest))
        except ValueError as exc:
            report.add(Status.critical, str(exc))
            return
    try:
        admin = await connect(params)
    except psycopg.Error as exc:
        report.add(
            Status.critical,
            f"PostgreSQL at {params['host']}:{params['port']}/{params['dbname']}: "
            f"cannot connect: {_one_line(exc)}",
        )
        return
    async with admin:
        drop = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(scratch))
        # A scratch database left by a crashed run goes first: the restore starts from empty.
        await admin.execute(drop)
        await admin.execute(sql.SQL("CREATE DATABASE {} TEMPLATE template0").format(sql.Identifier(scratch)))
        restored: dict[str, TableSum] | None = None
        try:
            restored = await _restore(cfg, ctx, dump, {**params, "dbname": scratch}, report)
            if restored is not None and cfg.compare == "source":
                expected = await checksums(admin)
        finally:
            await admin.execute(drop)
            report.changes.append(Change("drop", where))
    if restored is not None and expected is not None:
        _compare(expected, restored, "the source" if cfg.compare == "source" else "the manifest", cfg, report)


async def _restore(
    cfg: BackupPostgresConfig, ctx: RunContext, dump: Dump, params: dict[str, Any], report: Report
) -> dict[str, TableSum] | None:
    where = f"{params['host']}:{params['port']}/{params['dbname']}"
    argv = ["pg_restore", "--exit-on-error", "--no-owner", "--no-privileges", *libpq_args(params)]
    if dump.format == "directory" and cfg.jobs > 1:
        argv.append(f"--jobs={cfg.jobs}")
    started = time.perf_counter()
    try:
        done = await execute(
            [*argv, dump.path],
            env=libpq_env(params),
            limit=OUTPUT_LIMIT,
            tracker=ctx.processes,
            time_limit=max(1.0, ctx.seconds_left()),
        )
    except OSError as exc:
        report.add(Status.unknown, f"cannot start pg_restore: {exc.strerror or exc}")
        return None
    seconds = time.perf_counter() - started
    report.metrics["restore_seconds"] = round(seconds, 3)
    if done.code != 0:
        text = done.output.decode(errors="replace").strip().splitlines()
        errors = [line for line in text if "error:" in line] or text[-1:] or [""]
        how = "timed out" if done.code is None else f"exit {done.code}"
        report.add(Status.critical, f"restore into {where} failed ({how}): {errors[0]}")
        report.changes.append(Change("restore", where, {"dump": dump.path, "succeeded": False}))
        return None
    async with await connect(params) as conn:
        restored = await checksums(conn)
    rows = sum(t.rows for t in restored.values())
    report.metrics.update(tables=float(len(restored)), rows=float(rows))
    report.lines.insert(0, f"restored into {where} in {seconds:.1f}s: {len(restored)} tables, {rows} rows")
    report.changes.append(
        Change("restore", where, {"dump": dump.path, "tables": len(restored), "rows": rows})
    )
    return restored


def _compare(
    expected: dict[str, TableSum],
    restored: dict[str, TableSum],
    source: str,
    cfg: BackupPostgresConfig,
    report: Report,
) -> None:
    problems: list[str] = []
    for name in sorted(expected.keys() | restored.keys()):
        want, got = expected.get(name), restored.get(name)
        if got is None:
            problems.append(f"{name}: in {source}, not restored")
        elif want is None:
            problems.append(f"{name}: restored, not in {source}")
        elif want.rows != got.rows:
            problems.append(f"{name}: {got.rows} rows restored, {source} has {want.rows}")
        elif want.checksum != got.checksum:
            problems.append(f"{name}: {got.rows} rows as in {source}, but their content differs (checksum)")
    report.metrics["tables_differing"] = float(len(problems))
    if not problems:
        report.lines.append(f"every table's row count and checksum match {source}")
    for line in problems[: cfg.list_limit]:
        report.add(Status.critical, line)
    if len(problems) > cfg.list_limit:
        report.lines.append(f"... and {len(problems) - cfg.list_limit} more tables")


def _default_scratch(target: str) -> str:
    cleaned = "".join(c if c.isalnum() else "_" for c in target.lower())
    return f"maintd_verify_{cleaned}"[:63]


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__
