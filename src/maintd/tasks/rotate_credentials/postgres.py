"""One rotation: new password on the inactive role, secret file, reload, verify, retire the old.

Every step that can fail comes before the old role is retired, and a failure stops the run:
the old credential keeps working, so no consumer is locked out. The password is made by
``secrets``, sent to the server only as a SCRAM-SHA-256 verifier computed here (so it is in
no server log or pg_stat_activity), written to the secret file, and nowhere else.
"""

from __future__ import annotations

import asyncio
import secrets
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import psycopg
from psycopg import sql

from maintd.checks.base import Change, CheckResult, RunContext, Status
from maintd.checks.command.process import execute
from maintd.plan.types import format_duration
from maintd.tasks.postgres_upkeep.connect import Conn, connect, libpq_params, one_line
from maintd.tasks.rotate_credentials import RotatePostgresPasswordConfig
from maintd.tasks.rotate_credentials import secret_file as sf

OUTPUT_LIMIT = 8192
_RETIRE = {
    "nologin": "NOLOGIN, PASSWORD NULL",
    "password_null": "PASSWORD NULL",
    "valid_until": "VALID UNTIL now + retire_grace",
}


@dataclass
class Report:
    head: str
    status: Status = Status.ok
    lines: list[str] = field(default_factory=list)
    changes: list[Change] = field(default_factory=list)
    metrics: dict[str, float] = field(default_factory=lambda: {"rotated": 0.0, "retired": 0.0})
    memo: dict[str, Any] | None = None

    def fail(self, line: str, status: Status = Status.critical) -> None:
        self.status = max(self.status, status, key=lambda s: s.rank)
        self.lines.append(line)

    def result(self) -> CheckResult:
        output = "\n".join([self.head, *self.lines])
        return CheckResult(self.status, output, self.metrics, self.changes, memo=self.memo)


async def run(cfg: RotatePostgresPasswordConfig, ctx: RunContext) -> CheckResult:
    try:
        active = sf.read(cfg.secret_file, cfg.secret_format).user
    except sf.SecretFileError as exc:
        return CheckResult(Status.critical, str(exc))
    if active not in cfg.roles:
        return CheckResult(
            Status.critical,
            f"secret file {cfg.secret_file} names role {active}, not one of {cfg.roles[0]}, {cfg.roles[1]}",
        )
    inactive = cfg.roles[1] if active == cfg.roles[0] else cfg.roles[0]
    connected = await connect(cfg, ctx)
    if isinstance(connected, str):
        return CheckResult(Status.critical, connected)
    report = Report(f"PostgreSQL {connected.where}: {active} active, {inactive} inactive")
    async with connected.conn as conn:
        try:
            await _run(cfg, ctx, conn, report, active, inactive)
        except psycopg.Error as exc:
            report.fail(f"{'lost the connection: ' if conn.broken else ''}{one_line(exc)}")
    return report.result()


async def _run(
    cfg: RotatePostgresPasswordConfig, ctx: RunContext, conn: Conn, report: Report, active: str, inactive: str
) -> None:
    problem = await _check_roles(cfg, conn)
    if problem:
        report.fail(problem)
        return
    memo = await ctx.memo()
    if memo.get("retire_pending") == inactive and memo.get("active") == active:
        report.lines.append(f"finishing the last rotation: {inactive} is still to be retired")
        if ctx.dry_run:
            report.lines.append(f"dry run: would retire {inactive} ({_RETIRE[cfg.retire]})")
            report.changes.append(Change("retire", inactive, {"how": cfg.retire}))
        elif await _drain(cfg, ctx, conn, report, inactive):
            await _retire(cfg, ctx, conn, report, inactive)
            report.memo = {"rotated_at": memo.get("rotated_at"), "active": active}
        return
    last = _when(memo.get("rotated_at")) if memo.get("active") == active else None
    if cfg.min_interval is not None and last is not None and ctx.clock.now() - last < cfg.min_interval:
        within = format_duration(cfg.min_interval)
        report.lines.append(f"rotated at {last.isoformat()}, within min_interval {within}: nothing to do")
        return
    if ctx.dry_run:
        _plan(cfg, report, active, inactive)
        return
    await _rotate(cfg, ctx, conn, report, active, inactive)


def _when(value: Any) -> datetime | None:
    try:
        return datetime.fromisoformat(str(value)) if value else None
    except ValueError:
        return None


async def _check_roles(cfg: RotatePostgresPasswordConfig, conn: Conn) -> str | None:
    cursor = await conn.execute(
        "SELECT r.rolname, %(group)s::text IS NULL OR pg_has_role(r.oid, %(group)s::text, 'MEMBER') AS member"
        " FROM pg_roles r WHERE r.rolname = ANY(%(roles)s)",
        {"roles": cfg.roles, "group": cfg.group_role},
    )
    found = {row["rolname"]: row["member"] for row in await cursor.fetchall()}
    for role in cfg.roles:
        if role not in found:
            return f"role {role} does not exist: CREATE ROLE {role} IN ROLE <group>, then run again"
        if not found[role]:
            return f"role {role} is not a member of {cfg.group_role}: it would log in without the privileges"
    return None


def _plan(cfg: RotatePostgresPasswordConfig, report: Report, active: str, inactive: str) -> None:
    steps = [
        (f"set a new password on {inactive} (LOGIN, scram-sha-256)", Change("set-password", inactive)),
        (
            f"write {cfg.secret_file} naming {inactive} (mode 0600)",
            Change("write", cfg.secret_file, {"user": inactive}),
        ),
    ]
    if cfg.reload_command:
        steps.append((f"run the reload hook {cfg.reload_command}", Change("reload", cfg.reload_command[0])))
    steps.append((f"verify {inactive} logs in with the file's credentials", Change("verify", inactive)))
    if cfg.drain_timeout is not None:
        wait = format_duration(cfg.drain_timeout)
        steps.append((f"wait up to {wait} for {active}'s sessions to end", Change("drain", active)))
    steps.append((f"retire {active} ({_RETIRE[cfg.retire]})", Change("retire", active, {"how": cfg.retire})))
    for line, change in steps:
        report.lines.append(f"dry run: would {line}")
        report.changes.append(change)


async def _rotate(
    cfg: RotatePostgresPasswordConfig, ctx: RunContext, conn: Conn, report: Report, active: str, inactive: str
) -> None:
    password = secrets.token_urlsafe(32)
    verifier = conn.pgconn.encrypt_password(password.encode(), inactive.encode(), b"scram-sha-256")
    await conn.execute(
        sql.SQL("ALTER ROLE {} WITH LOGIN PASSWORD {} VALID UNTIL 'infinity'").format(
            sql.Identifier(inactive), sql.Literal(verifier.decode())
        )
    )
    report.changes.append(Change("set-password", inactive, {"algorithm": "scram-sha-256"}))
    kept = f"{active} still logs in"
    problem = await _logs_in(cfg, ctx, sf.Credentials(inactive, password))
    if problem:
        report.fail(
            f"the new password of {inactive} does not log in: {problem}; secret file unchanged, {kept}"
        )
        return
    report.lines.append(f"set a new password on {inactive} (scram-sha-256); it logs in")
    try:
        sf.write(cfg.secret_file, cfg.secret_format, sf.Credentials(inactive, password))
    except sf.SecretFileError as exc:
        report.fail(f"{exc}; {kept}")
        return
    del password
    report.metrics["rotated"] = 1.0
    report.memo = {"rotated_at": ctx.clock.now().isoformat(), "active": inactive}
    report.changes.append(Change("write", cfg.secret_file, {"user": inactive, "mode": "0600"}))
    report.lines.append(f"wrote {cfg.secret_file} naming {inactive} (mode 0600)")
    report.head = report.head.split(": ")[0] + f": rotated {active} -> {inactive}"
    if not await _consumers(cfg, ctx, report, inactive, kept):
        report.memo = {**report.memo, "retire_pending": active}
        return
    if await _drain(cfg, ctx, conn, report, active):
        await _retire(cfg, ctx, conn, report, active)
    else:
        report.memo = {**report.memo, "retire_pending": active}


async def _consumers(
    cfg: RotatePostgresPasswordConfig, ctx: RunContext, report: Report, role: str, kept: str
) -> bool:
    """The reload hook, then the file's credentials and the verify command; False on a failure."""
    for name, argv in (("reload hook", cfg.reload_command), ("verify command", cfg.verify_command)):
        if name == "verify command":
            problem = await _file_logs_in(cfg, ctx, role)
            if problem:
                report.fail(f"{problem}; {kept}")
                return False
            report.lines.append(f"the secret file's credentials log in as {role}")
        if not argv:
            continue
        outcome = await _hook(argv, ctx, cfg.reload_timeout.total_seconds())
        report.changes.append(Change(name.split()[0], argv[0], {"argv": argv, "result": outcome.result}))
        if not outcome.ok:
            report.fail(f"{name} {argv} failed ({outcome.result}){outcome.tail}; {kept}")
            return False
        report.lines.append(f"{name} {argv}: exit 0")
    return True


async def _file_logs_in(cfg: RotatePostgresPasswordConfig, ctx: RunContext, role: str) -> str | None:
    try:
        creds = sf.read(cfg.secret_file, cfg.secret_format)
    except sf.SecretFileError as exc:
        return str(exc)
    if creds.user != role:
        return f"secret file {cfg.secret_file} names {creds.user} after the reload, not {role}"
    problem = await _logs_in(cfg, ctx, creds)
    return f"the secret file's credentials do not log in: {problem}" if problem else None


async def _logs_in(cfg: RotatePostgresPasswordConfig, ctx: RunContext, creds: sf.Credentials) -> str | None:
    found = libpq_params(cfg, ctx)
    if isinstance(found, str):
        return found
    params = {**found[0], "user": creds.user, "password": creds.password}
    params["host"] = cfg.verify_host or params["host"]
    params["port"] = cfg.verify_port or params["port"]
    params["dbname"] = cfg.verify_database or params["dbname"]
    where = f"{creds.user}@{params['host']}:{params['port']}/{params['dbname']}"
    try:
        async with await psycopg.AsyncConnection.connect(application_name="maintd-verify", **params) as conn:
            await conn.execute("SELECT 1")
    except psycopg.Error as exc:
        return f"{where}: {one_line(exc)}"
    return None


@dataclass(frozen=True)
class Hook:
    ok: bool
    result: str  # "exit 0", "exit 1", "timed out", "cannot start: ..."
    tail: str  # ": <last line of its output>" or ""


async def _hook(argv: list[str], ctx: RunContext, limit: float) -> Hook:
    try:
        done = await execute(
            argv,
            limit=OUTPUT_LIMIT,
            tracker=ctx.processes,
            time_limit=max(1.0, min(limit, ctx.seconds_left())),
        )
    except OSError as exc:
        return Hook(False, f"cannot start: {exc.strerror or exc}", "")
    text = done.output.decode(errors="replace").strip().splitlines()
    tail = f": {text[-1].strip()}" if text else ""
    if done.code is None:
        return Hook(False, "timed out", tail)
    return Hook(done.code == 0, f"exit {done.code}", tail)


async def _drain(
    cfg: RotatePostgresPasswordConfig, ctx: RunContext, conn: Conn, report: Report, old: str
) -> bool:
    """True when no session of ``old`` is left (or no wait is configured), polling to a bounded deadline."""
    if cfg.drain_timeout is None:
        return True
    loop = asyncio.get_running_loop()
    started = loop.time()
    deadline = started + min(cfg.drain_timeout.total_seconds(), ctx.seconds_left())
    while True:
        cursor = await conn.execute("SELECT count(*) AS n FROM pg_stat_activity WHERE usename = %s", (old,))
        row = await cursor.fetchone()
        sessions = int(row["n"]) if row else 0
        report.metrics["old_sessions"] = float(sessions)
        if sessions == 0:
            report.lines.append(f"no session of {old} left after {loop.time() - started:.1f}s")
            return True
        if loop.time() >= deadline:
            report.fail(
                f"{sessions} sessions of {old} still open after {format_duration(cfg.drain_timeout)}: "
                f"{old} left logging in; the next run retires it",
                Status.warning,
            )
            return False
        await asyncio.sleep(0.1)


async def _retire(
    cfg: RotatePostgresPasswordConfig, ctx: RunContext, conn: Conn, report: Report, old: str
) -> None:
    role = sql.Identifier(old)
    detail: dict[str, Any] = {"how": cfg.retire}
    if cfg.retire == "nologin":
        await conn.execute(sql.SQL("ALTER ROLE {} WITH NOLOGIN PASSWORD NULL").format(role))
    elif cfg.retire == "password_null":
        await conn.execute(sql.SQL("ALTER ROLE {} WITH PASSWORD NULL").format(role))
    else:
        until = (ctx.clock.now() + cfg.retire_grace).isoformat()
        await conn.execute(sql.SQL("ALTER ROLE {} VALID UNTIL {}").format(role, sql.Literal(until)))
        detail["valid_until"] = until
    report.changes.append(Change("retire", old, detail))
    report.metrics["retired"] = 1.0
    report.lines.append(f"retired {old} ({_RETIRE[cfg.retire]})")
