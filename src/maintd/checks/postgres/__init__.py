"""``postgres``: connect, version, role (the seed's ``pg_is_in_recovery()``), replication on either
side, connections, long and idle-in-transaction sessions, and dead tuples.

psycopg 3 async, read-only, a statement timeout on every query. Each outcome of
the server (refused, wrong password, promoted, lagging) is a result, never an
exception. psycopg is imported only when a check runs (``check`` holds what uses it).
"""

from __future__ import annotations

from maintd.checks.base import Kind, lazy
from maintd.checks.postgres.config import PostgresConfig, Role

__all__ = ["KIND", "PostgresCheck", "PostgresConfig", "Role"]


KIND = Kind(
    name="postgres",
    config=PostgresConfig,
    build=lazy("maintd.checks.postgres.check"),
    summary="PostgreSQL role, replication lag and standbys, connections, long transactions, dead tuples",
)
