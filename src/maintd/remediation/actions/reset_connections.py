"""``reset_connections`` (connection_pool_exhausted): terminate a named application's idle sessions.

Selects the sessions of ``application`` (``pg_stat_activity.application_name``, exact) in the
given states, idle at least ``idle_for``, and ends each with ``pg_terminate_backend``. The
sessions count towards the blast radius; an empty application name is refused.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any, Literal

from pydantic import Field

from maintd.checks.base import Change
from maintd.checks.postgres.config import PostgresConnection
from maintd.plan.types import Duration
from maintd.remediation.base import ActionContext, ActionKind, ActionResult, Refused, limit_blast, one_line

State = Literal["idle in transaction", "idle in transaction (aborted)", "idle"]

_SELECT = """
SELECT pid, usename, state, datname
FROM pg_stat_activity
WHERE application_name = %(application)s
  AND state = ANY(%(states)s)
  AND pid <> pg_backend_pid()
  AND now() - state_change >= %(idle_for)s
ORDER BY pid
"""


class ResetConfig(PostgresConnection):
    """Where to connect is the postgres check's model (host, port, database, user, sslmode, password
    secret, connect timeout), each defaulting to ``target``'s connection."""

    application: str = Field(description="application_name of the sessions to end; ${label} is filled in")
    states: list[State] = Field(
        default=["idle in transaction", "idle in transaction (aborted)"],
        min_length=1,
        description="session states to end",
    )
    idle_for: Duration = Field(default=timedelta(0), description="only sessions in that state this long")
    target: str | None = Field(
        default=None, description="plan target whose connection (host, port, database, user) to use"
    )


class ResetConnections:
    def __init__(self, config: ResetConfig) -> None:
        self.config = config

    async def execute(self, ctx: ActionContext) -> ActionResult:
        import psycopg
        from psycopg.rows import dict_row

        cfg = self.config
        if not cfg.application.strip():
            raise Refused("the application selector is empty; an empty selector never means all")
        params = _params(cfg, ctx)
        where = f"{params.get('host')}:{params.get('port')}/{params.get('dbname')}"
        try:
            conn = await psycopg.AsyncConnection.connect(
                autocommit=True,
                row_factory=dict_row,
                application_name="maintd-remediation",
                connect_timeout=max(2, int(min(cfg.connect_timeout.total_seconds(), ctx.seconds_left()))),
                **params,
            )
        except psycopg.Error as exc:
            return ActionResult(False, f"PostgreSQL at {where}: cannot connect: {one_line(exc)}")
        async with conn:
            try:
                rows = await (
                    await conn.execute(
                        _SELECT,
                        {
                            "application": cfg.application,
                            "states": list(cfg.states),
                            "idle_for": cfg.idle_for,
                        },
                    )
                ).fetchall()
            except psycopg.Error as exc:
                return ActionResult(False, f"PostgreSQL at {where}: {one_line(exc)}")
            sessions = [f"pid {r['pid']} ({r['state']})" for r in rows]
            limit_blast("sessions", sessions, ctx.max_targets, selector=f"application_name={cfg.application}")
            changes = [
                Change(
                    "terminate",
                    f"pid {r['pid']}",
                    {"user": r["usename"], "state": r["state"], "database": r["datname"]},
                )
                for r in rows
            ]
            if ctx.dry_run:
                return ActionResult(
                    True, f"dry run: would terminate {len(rows)} sessions of {cfg.application}", changes
                )
            ended: list[Change] = []
            for row, change in zip(rows, changes, strict=True):
                try:
                    cur = await conn.execute("SELECT pg_terminate_backend(%s) AS ok", (row["pid"],))
                    found = await cur.fetchone()
                except psycopg.Error as exc:
                    return ActionResult(
                        False, f"PostgreSQL at {where}: terminating pid {row['pid']}: {one_line(exc)}", ended
                    )
                if found and found["ok"]:
                    ended.append(change)
        return ActionResult(True, f"terminated {len(ended)} sessions of {cfg.application} at {where}", ended)


def _params(cfg: ResetConfig, ctx: ActionContext) -> dict[str, Any]:
    """libpq keywords from params over ``target``'s connection, as the postgres check reads them."""
    conn: dict[str, Any] = {}
    secrets: dict[str, Any] = {}
    if cfg.target is not None:
        try:
            target = ctx.plan_target(cfg.target)
        except KeyError:
            raise Refused(f"the plan has no target {cfg.target!r}") from None
        conn, secrets = dict(target.connection), dict(target.secrets)
    params: dict[str, Any] = {
        "host": cfg.host or conn.get("host"),
        "port": cfg.port or conn.get("port") or 5432,
        "dbname": cfg.database or conn.get("database") or conn.get("dbname") or "postgres",
        "user": cfg.user or conn.get("user"),
        "sslmode": cfg.sslmode or conn.get("sslmode"),
    }
    if params["host"] is None:
        raise Refused("no host: set params.host, or name a target whose connection has one")
    if cfg.password_secret in secrets:
        params["password"] = secrets[cfg.password_secret].resolve()
    return {k: v for k, v in params.items() if v is not None}


ACTION = ActionKind(
    name="reset_connections",
    config=ResetConfig,
    build=ResetConnections,
    summary="connection_pool_exhausted: pg_terminate_backend on a named application's idle sessions",
)
