"""Connect as the ``postgres`` check does (its libpq params from params over the target's
connection, the password from the target's secret), but writable and in autocommit: VACUUM,
REINDEX CONCURRENTLY and DROP INDEX CONCURRENTLY refuse to run inside a transaction block."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg.rows import DictRow, dict_row

from maintd.checks.base import RunContext
from maintd.checks.postgres import check
from maintd.checks.postgres.check import one_line
from maintd.checks.postgres.config import PostgresConnection

Conn = psycopg.AsyncConnection[DictRow]

__all__ = ["Conn", "Connected", "connect", "libpq_params", "one_line"]


@dataclass(frozen=True)
class Connected:
    conn: Conn
    where: str  # user@host:port/database, for messages
    params: dict[str, Any]  # the libpq keywords used, password included: never print them


def libpq_params(cfg: PostgresConnection, ctx: RunContext) -> tuple[dict[str, Any], str] | str:
    """The libpq keywords (password included) and ``user@host:port/db``, or why there are none."""
    params = check.libpq_params(cfg, ctx)
    if "host" not in params:
        return f"no host: set params.host or target {ctx.target.name}'s connection.host"
    user = f"{params['user']}@" if "user" in params else ""
    where = f"{user}{params['host']}:{params['port']}/{params['dbname']}"
    if cfg.password_secret in ctx.target.secrets:
        try:
            params["password"] = ctx.secret(cfg.password_secret)
        except LookupError as exc:
            return f"PostgreSQL at {where}: {exc}"
    # libpq takes whole seconds and waits at least 2.
    params["connect_timeout"] = max(2, int(min(cfg.connect_timeout.total_seconds(), ctx.seconds_left())))
    return params, where


async def connect(cfg: PostgresConnection, ctx: RunContext) -> Connected | str:
    """An autocommit connection, or the one-line reason there is none (database down, refused)."""
    found = libpq_params(cfg, ctx)
    if isinstance(found, str):
        return found
    params, where = found
    try:
        conn = await psycopg.AsyncConnection.connect(
            autocommit=True, row_factory=dict_row, prepare_threshold=None, application_name="maintd", **params
        )
    except psycopg.Error as exc:
        return f"PostgreSQL at {where}: cannot connect: {one_line(exc)}"
    return Connected(conn, where, params)
