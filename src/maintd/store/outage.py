"""Telling a database outage from a bug, for the API's answers and the logs.

While PostgreSQL restarts, the same outage surfaces as several exceptions, depending on
where a session was when the connection went: a refused or failed connect
(``OperationalError``), a connection closed under a statement (``InterfaceError``, or any
DBAPI error flagged ``connection_invalidated``), the pool's pre-ping giving up
(``DisconnectionError``), or, at COMMIT, "Can't reconnect until invalid transaction is rolled
back" (``PendingRollbackError`` with code 8s2b) when a statement of the transaction met the
closed connection. Each means "nothing was stored, ask again later": a 503 with
Retry-After, and one log line rather than a traceback per loop and tick.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from typing import TypeVar

from sqlalchemy.exc import (
    DBAPIError,
    DisconnectionError,
    InterfaceError,
    OperationalError,
    PendingRollbackError,
)

from maintd.store.db import StoreError

RETRY_AFTER = 5  # seconds a sender is asked to wait: PostgreSQL restarts in about that long
DEADLINE = 10.0  # seconds a request waits for the database before its 503: under senders' timeouts
T = TypeVar("T")
_INVALID_TRANSACTION = "8s2b"  # PendingRollbackError's code for a connection lost in a transaction
_READ_ONLY = "25006"  # PostgreSQL's read_only_sql_transaction (psycopg files it as an InternalError)


def unavailable(exc: BaseException) -> bool:
    """Whether ``exc`` (or what caused it) says the database could not be reached."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if _lost(current):
            return True
        current = current.__cause__ or current.__context__
    return False


def _lost(exc: BaseException) -> bool:
    if isinstance(exc, OperationalError | InterfaceError | DisconnectionError | StoreError):
        return True
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    if isinstance(exc, DBAPIError) and getattr(exc.orig, "sqlstate", None) == _READ_ONLY:
        return True  # a hot standby after a failover, or read-only for maintenance: writes wait
    return isinstance(exc, PendingRollbackError) and exc.code == _INVALID_TRANSACTION


async def bounded(awaitable: Awaitable[T], seconds: float = DEADLINE) -> T:
    """``awaitable``'s result, or StoreError once the database has not answered for ``seconds``.

    A database that accepts connections and never answers (a frozen host, a half-open TCP
    path) fails nothing: a statement waits for hours. What was started goes on in its thread
    (a commit may still land later: the 503 says a repeat is harmless).
    """
    try:
        return await asyncio.wait_for(awaitable, seconds)
    except TimeoutError:
        raise StoreError(f"the database did not answer within {seconds:g} s") from None


def reason(exc: BaseException) -> str:
    """The first line of what the database driver said (no SQL, no parameters)."""
    current: BaseException | None = exc
    while current is not None:
        if isinstance(current, DBAPIError | StoreError | DisconnectionError) and not isinstance(
            current, PendingRollbackError
        ):
            text = str(getattr(current, "orig", None) or current).strip()
            if text:
                return text.splitlines()[0]
        current = current.__cause__ or current.__context__
    return type(exc).__name__


def unusable(database: str, exc: BaseException) -> str:
    """What ``maintd serve`` and the CLI say when ``database`` (described) cannot be opened or
    migrated: the driver's words for an outage, the first line of anything else."""
    said = reason(exc) if unavailable(exc) else (str(exc).splitlines() or [type(exc).__name__])[0]
    return f"cannot open or upgrade the database {database}: {said}"


class OutageLogFilter(logging.Filter):
    """Logs a database outage as one line: the message and the driver's reason, no traceback.

    Every loop (scheduler, timers, notifications, wake-ups) logs its failures with the
    traceback, which is right for a bug; during an outage that was ~80 lines per tick.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and record.exc_info[1] is not None and unavailable(record.exc_info[1]):
            record.msg = f"{record.getMessage()} (database unavailable: {reason(record.exc_info[1])})"
            record.args = None
            record.exc_info = None
            record.exc_text = None
        return True


def quiet_outages() -> None:
    """Install ``OutageLogFilter`` on the root logger's handlers (after ``basicConfig``)."""
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, OutageLogFilter) for f in handler.filters):
            handler.addFilter(OutageLogFilter())
