"""``postgres``: connect, version, role (the seed's ``pg_is_in_recovery()``), replication on either
side, connections, long and idle-in-transaction sessions, and dead tuples.

psycopg 3 async, read-only, a statement timeout on every query. Each outcome of
the server (refused, wrong password, promoted, lagging) is a result, never an
exception. psycopg is imported only when a check runs (``check`` holds what uses it).
"""

from __future__ import annotations

import asyncio
import importlib
import sys

from maintd.checks.base import CheckResult, Kind, RunContext
from maintd.checks.postgres.config import PostgresConfig, Role

__all__ = ["KIND", "PostgresCheck", "PostgresConfig", "Role"]

_CHECK = "maintd.checks.postgres.check"


class PostgresCheck:
    def __init__(self, config: PostgresConfig) -> None:
        self.config = config

    async def run(self, ctx: RunContext) -> CheckResult:
        if _CHECK not in sys.modules:  # the first check imports psycopg, off the event loop
            await asyncio.to_thread(importlib.import_module, _CHECK)
        from maintd.checks.postgres.check import run

        return await run(self.config, ctx)


KIND = Kind(
    name="postgres",
    config=PostgresConfig,
    build=PostgresCheck,
    summary="PostgreSQL role, replication lag and standbys, connections, long transactions, dead tuples",
)
