"""What ``maintd serve`` claims before it changes anything: its port and, on SQLite, the database.

A second ``maintd serve`` started by mistake beside a running one (``make run`` twice, a unit
file and a terminal) must stop before its start-up marks the first one's runs as interrupted,
syncs the plan or records an ``engine.started``. So the port is bound first (the same port:
"address already in use") and a SQLite database is locked next (another port: two schedulers
on one SQLite file would run every task twice). PostgreSQL has the scheduler lease for that.
Both are released by the kernel when the process dies, however it dies.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import socket
from collections.abc import Iterator
from pathlib import Path

from maintd.store.db import Store

BACKLOG = 2048  # uvicorn's default


class ClaimError(Exception):
    pass


@contextlib.contextmanager
def port(host: str, number: int) -> Iterator[socket.socket]:
    """The listening socket uvicorn is handed later; connections queue in its backlog meanwhile."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # a restart beside TIME_WAIT
        sock.bind((host, number))
        sock.listen(BACKLOG)
    except OSError as exc:
        sock.close()
        hint = ""
        if exc.errno == errno.EADDRINUSE:
            hint = " (is maintd already running? choose another port with --port or MAINTD_PORT)"
        raise ClaimError(f"cannot listen on {host}:{number}: {exc.strerror or exc}{hint}") from None
    with sock:
        yield sock


@contextlib.contextmanager
def database(store: Store) -> Iterator[None]:
    """On a SQLite file, an exclusive lock on ``<file>.lock`` (holding the holder's pid)."""
    path = sqlite_file(store)
    if path is None:
        yield
        return
    lock = path.with_name(path.name + ".lock")
    try:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise ClaimError(f"cannot open {lock}: {exc.strerror or exc}") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
            raise ClaimError(
                f"another maintd serve (pid {holder}) is running on {path}: one maintd serve per "
                "SQLite database; stop it, or use PostgreSQL to run several (docs/deployment.md)"
            ) from None
        # The pid only names the holder in that message: a full disk must not stop the start
        # here (the database says so itself, more usefully).
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        os.close(fd)


def sqlite_file(store: Store) -> Path | None:
    """The database file of a SQLite store; None for PostgreSQL or an in-memory database."""
    url = store.engine.url
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return None
    if url.database.startswith("file:") or url.query.get("mode") == "memory":
        return None  # a URI filename: rare enough not to parse
    return Path(url.database).absolute()
