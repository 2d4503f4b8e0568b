"""The store: one SQLAlchemy engine, sessions, and schema migrations.

SQLite (WAL) is the embedded default; PostgreSQL is the production store.
Callers own transactions (``with store.write() as s``); functions that take a
session only flush.
"""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import CursorResult, Engine, Result, create_engine, event, text
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from maintd.store.base import json_dumps

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS = str(Path(__file__).parent / "migrations")


PG_CONNECT = {
    "connect_timeout": 5,  # seconds (libpq's minimum is 2)
    "keepalives_idle": 30,  # seconds of silence before TCP asks the peer whether it is there
    "keepalives_interval": 10,
    "keepalives_count": 3,
    "tcp_user_timeout": 30_000,  # ms that sent data may stay unacknowledged: a vanished peer
}


class StoreError(Exception):
    """The database is unreachable or refused an operation."""


def normalise_url(url: str) -> str:
    """Accept ``postgresql://`` and ``postgres://`` as psycopg 3 URLs, and ``sqlite:///~/x.db``
    as the home directory's (sqlite3 would open a directory named ``~``; no shell expands a URL)."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    if url.startswith("sqlite:///~"):
        return "sqlite:///" + os.path.expanduser(url.removeprefix("sqlite:///"))
    return url


# The drivers maintd is built and tested with; any other would fail later, on a missing module.
DRIVERS = ("sqlite", "sqlite+pysqlite", "postgresql+psycopg")


class Store:
    def __init__(self, url: str, *, echo: bool = False) -> None:
        self.url = normalise_url(url)
        try:
            parsed = make_url(self.url)
        except ArgumentError:
            parsed = None
        if parsed is None or parsed.drivername not in DRIVERS:
            scheme = url.partition(":")[0] if ":" in url else ""
            shown = scheme if re.fullmatch(r"[A-Za-z][A-Za-z0-9+.-]*", scheme) else "no scheme"
            raise StoreError(  # naming only the scheme: the URL may hold a password
                f"unsupported database URL ({shown}): use sqlite:///PATH or "
                "postgresql://USER@HOST:PORT/DATABASE"
            )
        self.dialect = parsed.get_backend_name()
        kwargs: dict[str, Any] = {"echo": echo, "future": True, "json_serializer": json_dumps}
        if self.dialect == "sqlite":
            if parsed.database and parsed.database != ":memory:":
                folder = Path(parsed.database).parent  # normalise_url has expanded ~
                try:
                    folder.mkdir(parents=True, exist_ok=True)
                except OSError as exc:  # read-only, full, or under something that is not a folder
                    raise StoreError(
                        f"cannot make the folder {folder} for the database: {exc.strerror or exc}"
                    ) from None
            kwargs["connect_args"] = {"check_same_thread": False, "timeout": 30}
        else:
            kwargs.update(pool_pre_ping=True, pool_size=10, max_overflow=20)
            # Without these a connect to a host that does not answer waits for the kernel's SYN
            # retries (~2 min) or forever (a server that accepts and never speaks), and a
            # connection whose peer vanished is noticed after 2 h of keepalive idle. The URL's
            # own parameters (?connect_timeout=...) win.
            kwargs["connect_args"] = {k: v for k, v in PG_CONNECT.items() if k not in parsed.query}
        self.engine: Engine = create_engine(self.url, **kwargs)
        if self.dialect == "sqlite":
            _sqlite_tuning(self.engine)
        self._reader = sessionmaker(self.engine, expire_on_commit=False)
        # SQLite: writers take the write lock at BEGIN, so two writers queue on busy_timeout
        # instead of failing when a read transaction tries to upgrade.
        self._writer = sessionmaker(
            self.engine.execution_options(sqlite_immediate=True), expire_on_commit=False
        )

    @contextlib.contextmanager
    def write(self) -> Iterator[Session]:
        """A read-write transaction, committed on success, rolled back on error."""
        with self._writer.begin() as session:
            yield session

    @contextlib.contextmanager
    def read(self) -> Iterator[Session]:
        with self._reader() as session:
            yield session

    def ping(self) -> None:
        try:
            with self.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
        except SQLAlchemyError as exc:
            raise StoreError(f"database unreachable: {_short(exc)}") from exc

    def upgrade(self, revision: str = "head") -> None:
        """Apply migrations up to ``revision`` (idempotent).

        A database already at the head is recognised without Alembic, whose import (Mako,
        Pygments) costs every CLI command half a second."""
        if revision == "head" and self.current_revision() == head_revision():
            return
        from alembic import command

        with self.engine.begin() as conn:
            cfg = alembic_config()
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, revision)

    def upgrade_apart(self) -> None:
        """``upgrade()`` for a long-running server: when there is something to migrate, migrate in a
        child process (``maintd db upgrade``). Alembic and Mako are ~11 MB that a server which
        migrated at its start would otherwise keep resident for the rest of its life."""
        if self.current_revision() == head_revision():
            return
        if self.engine.url.get_backend_name() == "sqlite" and self.engine.url.database in (
            None,
            "",
            ":memory:",
        ):
            self.upgrade()  # a child cannot see this process's in-memory database
            return
        env = {**os.environ, "MAINTD_DATABASE_URL": self.url}  # not argv: ps would show a password
        done = subprocess.run(
            [sys.executable, "-m", "maintd", "db", "upgrade"], env=env, capture_output=True, text=True
        )
        if done.returncode != 0:
            said = (done.stderr.strip().splitlines() or [f"exit status {done.returncode}"])[-1]
            said = said.removeprefix("error: ")  # the child's CLI line usually names the database
            named = self.describe() in said
            raise StoreError(said if named else f"migrating {self.describe()} failed: {said}")

    def current_revision(self) -> str | None:
        with self.engine.connect() as conn:
            try:
                return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
            except SQLAlchemyError:
                return None

    def dispose(self) -> None:
        self.engine.dispose()

    def describe(self) -> str:
        """The URL with any password hidden."""
        return make_url(self.url).render_as_string(hide_password=True)


def head_revision() -> str:
    """The newest migration's revision: the one no other migration revises."""
    revisions, revised = set(), set()
    for path in Path(MIGRATIONS, "versions").glob("*.py"):
        text_ = path.read_text()
        if found := _REVISION.search(text_):
            revisions.add(found.group(1))
        if found := _DOWN_REVISION.search(text_):
            revised.add(found.group(1))
    (head,) = revisions - revised  # one head: migrations are a line, never a branch
    return head


_REVISION = re.compile(r'^revision = "([^"]+)"', re.M)
_DOWN_REVISION = re.compile(r'^down_revision = "([^"]+)"', re.M)


def alembic_config() -> Config:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", MIGRATIONS)
    return cfg


def _sqlite_tuning(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" hook issue BEGIN itself (pysqlite's own is deferred).
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        immediate = conn.get_execution_options().get("sqlite_immediate")
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def _short(exc: BaseException) -> str:
    text_ = str(getattr(exc, "orig", None) or exc)
    return text_.strip().splitlines()[0] if text_.strip() else type(exc).__name__


def rowcount(result: Result[Any]) -> int:
    """Rows an UPDATE or DELETE matched (typed: ``Session.execute`` returns a plain Result)."""
    return cast(CursorResult[Any], result).rowcount


def dialect_insert(session: Session) -> Callable[..., Any]:
    """The INSERT construct with ON CONFLICT support for this session's database."""
    if session.get_bind().dialect.name == "postgresql":
        return postgresql_insert
    return sqlite_insert
