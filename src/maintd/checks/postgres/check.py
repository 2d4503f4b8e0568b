"""Connect read-only with a statement timeout, learn version and role, then run the chosen probes."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import psycopg
from psycopg import errors
from psycopg.rows import dict_row

from maintd.checks.base import CheckResult, RunContext, Status
from maintd.checks.postgres import probes
from maintd.checks.postgres.config import PostgresConfig, Role
from maintd.checks.postgres.report import Report, fmt_seconds

# A probe this role may not run, or one this server version lacks: unknown, and the others go on.
_NOT_ALLOWED = (errors.InsufficientPrivilege, errors.UndefinedFunction, errors.UndefinedColumn)

Probe = Callable[[probes.Conn, PostgresConfig, Report], Awaitable[None]]

_SERVER = """
SELECT current_setting('server_version') AS version,
       current_setting('server_version_num')::int AS version_num,
       pg_is_in_recovery() AS in_recovery
"""


async def run(cfg: PostgresConfig, ctx: RunContext) -> CheckResult:
    params = libpq_params(cfg, ctx)
    if "host" not in params:
        return CheckResult(
            Status.unknown, f"no host: set params.host or target {ctx.target.name}'s connection.host"
        )
    user = f"{params['user']}@" if "user" in params else ""
    report = Report(where=f"{user}{params['host']}:{params['port']}/{params['dbname']}")
    if cfg.password_secret in ctx.target.secrets:
        try:
            params["password"] = ctx.secret(cfg.password_secret)
        except LookupError as exc:
            return CheckResult(Status.unknown, f"PostgreSQL at {report.where}: {exc}")
    # libpq takes whole seconds and waits at least 2.
    params["connect_timeout"] = max(2, int(min(cfg.connect_timeout.total_seconds(), ctx.seconds_left())))
    started = time.perf_counter()
    try:
        conn = await psycopg.AsyncConnection.connect(
            autocommit=True,
            row_factory=dict_row,
            prepare_threshold=None,
            application_name="maintd",
            **params,
        )
    except psycopg.Error as exc:
        return CheckResult(Status.critical, f"PostgreSQL at {report.where}: cannot connect: {one_line(exc)}")
    report.metrics["connect_seconds"] = round(time.perf_counter() - started, 6)
    async with conn:
        await _check(conn, cfg, ctx, report)
    return report.result()


class Where(Protocol):
    """A kind's params naming where to connect; each unset one comes from the target's connection."""

    @property
    def host(self) -> str | None: ...

    @property
    def port(self) -> int | None: ...

    @property
    def database(self) -> str | None: ...

    @property
    def user(self) -> str | None: ...


def libpq_params(cfg: Where, ctx: RunContext) -> dict[str, Any]:
    """libpq keywords from params over the target's connection (password left out)."""
    conn = ctx.target.connection
    params: dict[str, Any] = {
        "host": cfg.host or conn.get("host"),
        "port": cfg.port or conn.get("port") or 5432,
        "dbname": cfg.database or conn.get("database") or conn.get("dbname") or "postgres",
        "user": cfg.user or conn.get("user"),
        "sslmode": getattr(cfg, "sslmode", None) or conn.get("sslmode"),
    }
    return {key: value for key, value in params.items() if value is not None}


async def _check(conn: probes.Conn, cfg: PostgresConfig, ctx: RunContext, report: Report) -> None:
    timeout_ms = max(1, int(1000 * min(cfg.statement_timeout.total_seconds(), ctx.seconds_left())))
    step = "setup"
    try:
        await conn.execute(
            "SELECT set_config('statement_timeout', %s, false),"
            " set_config('default_transaction_read_only', 'on', false)",
            (f"{timeout_ms}ms",),
        )
        step = "version and role"
        (server,) = await probes.fetch(conn, _SERVER)
        if not _server(cfg, server, report):
            return
        chosen: list[tuple[str, Probe]] = []
        if "replication" in cfg.checks:
            side = probes.standby_replication if server["in_recovery"] else probes.primary_replication
            chosen.append(("replication", side))
        if "connections" in cfg.checks:
            chosen.append(("connections", probes.connections))
        if "transactions" in cfg.checks:
            chosen.append(("transactions", probes.transactions))
        if "dead_tuples" in cfg.checks:
            chosen.append(("dead tuples", probes.dead_tuples))
        for step, probe in chosen:
            try:
                await probe(conn, cfg, report)
            except _NOT_ALLOWED as exc:
                report.problem(Status.unknown, f"{step}: {one_line(exc)}")
    except errors.QueryCanceled:
        report.problem(
            Status.critical,
            f"{step}: a query took longer than the statement timeout {fmt_seconds(timeout_ms / 1000)}",
        )
    except psycopg.OperationalError as exc:
        report.problem(Status.critical, f"{step}: lost the connection: {one_line(exc)}")
    except psycopg.Error as exc:
        report.problem(Status.unknown, f"{step}: {one_line(exc)}")


def _server(cfg: PostgresConfig, server: dict[str, Any], report: Report) -> bool:
    """Version and role into the report; False when the server is too old to go on."""
    version = str(server["version"]).split()[0]
    in_recovery = bool(server["in_recovery"])
    role = Role.standby if in_recovery else Role.primary
    report.metrics["server_version"] = float(server["version_num"])
    report.metrics["is_in_recovery"] = 1.0 if in_recovery else 0.0
    report.headline = f"PostgreSQL {version} {role.value}"
    if server["version_num"] < 100000:
        report.problem(Status.unknown, f"PostgreSQL {version} is older than 10, which this check needs")
        return False
    expected = cfg.expect_role
    if expected is not Role.any and expected is not role:
        report.headline += f" (expected {expected.value})"
        if expected is Role.primary:
            report.problem(Status.critical, "expected a primary, but the server is in recovery (a standby)")
        else:
            report.problem(
                Status.critical,
                "expected a standby, but the server is not in recovery: promoted, or the wrong server",
            )
    return True


def one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__
