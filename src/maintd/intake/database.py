"""The intake's database: its few statements in raw SQL over ``sqlite3`` or ``psycopg``.

The URL is maintd's (SQLAlchemy's spelling, as ``MAINTD_DATABASE_URL``), read here by hand:
the intake imports no SQLAlchemy. A ``Database`` is one connection, used by one thread; it
connects on first use and again after the connection is lost. Every database error becomes
``Unavailable`` (the transaction rolled back, nothing of it stored): the sender gets a 503 and
sends again, as after any outage.
"""

from __future__ import annotations

import functools
import os
import urllib.parse
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

from maintd.clock import utc

if TYPE_CHECKING:
    import sqlite3

    import psycopg

# As maintd.store.db.PG_CONNECT (a test keeps the two equal): bounded connects, a vanished
# peer noticed in about 30 s rather than 2 h. The URL's own parameters win.
PG_CONNECT = {
    "connect_timeout": 5,
    "keepalives_idle": 30,
    "keepalives_interval": 10,
    "keepalives_count": 3,
    "tcp_user_timeout": 30_000,
}
SQLITE_BUSY_MS = 30_000  # as maintd.store.db: writers queue on the write lock rather than fail

COLUMNS = "received_at, source, actor, integration, dedup_key, body"


class Unavailable(Exception):
    """The database could not be reached, or could not store: nothing of the transaction was stored.

    ``refused``: the database answered and refused the data (a constraint, a value too long).
    ``lost``: a connection that worked before is gone (the database restarted since).
    """

    def __init__(self, reason: str, *, refused: bool = False, lost: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.refused = refused
        self.lost = lost


class Row(NamedTuple):
    """One journal row as the intake writes it (table ``alert_intake``, maintd.store.intake_tables).

    A NamedTuple: made once per request, and a frozen dataclass's __init__ costs ~5x its build.
    """

    received_at: datetime
    source: str  # native, alertmanager, pagerduty
    actor: str  # token:NAME or integration:NAME
    integration: str | None
    dedup_key: str | None  # PagerDuty: the dedup_key answered
    body: bytes  # as received, already validated


@dataclass(frozen=True)
class Found:
    """An enabled integration, as its key found it."""

    name: str
    kind: str


@dataclass(frozen=True)
class TokenFound:
    name: str
    role: str
    last_used: datetime | None


class Database(Protocol):
    """One connection's statements; every method raises ``Unavailable`` when the database fails."""

    def insert(self, rows: Sequence[Row]) -> list[int]:
        """Store ``rows`` in one transaction and commit; their ids, in order."""

    def integration(self, key_hash: str) -> Found | None:
        """The enabled integration whose key has this hash."""

    def token(self, token_hash: str) -> TokenFound | None:
        """The unrevoked API token whose value has this hash."""

    def touch(self, name: str, now: datetime) -> None:
        """Stamp the token's last use (committed)."""

    def ping(self) -> None:
        """Raise Unavailable unless the database answers and holds the journal."""

    def close(self) -> None: ...


def describe(url: str) -> str:
    """The URL with any password hidden, for logs and errors."""
    parts = urllib.parse.urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc))


def opener(url: str) -> type[SQLite] | type[Postgres]:
    """The Database class for ``url``; ValueError naming what is accepted for any other."""
    scheme = url.partition(":")[0].lower()
    if scheme in ("sqlite", "sqlite+pysqlite"):
        return SQLite
    if scheme in ("postgres", "postgresql", "postgresql+psycopg"):
        return Postgres
    raise ValueError(
        f"maintd intake cannot use the database URL {describe(url)!r}: "
        "it takes sqlite:///PATH or postgresql://... (postgresql+psycopg://...)"
    )


def sqlite_path(url: str) -> str:
    """The file of a ``sqlite:///PATH`` URL (``sqlite:////abs`` is absolute, as SQLAlchemy reads it)."""
    rest = url.split(":", 1)[1]
    if not rest.startswith("///"):
        raise ValueError(f"{url!r}: a SQLite URL is sqlite:///relative/path or sqlite:////absolute/path")
    path, _, query = rest[3:].partition("?")
    if not path or path == ":memory:":
        raise ValueError(f"{url!r}: the intake needs the database file maintd serve uses, not memory")
    if query:
        raise ValueError(f"{url!r}: the intake takes no parameters in a SQLite URL")
    return os.path.expanduser(path)  # sqlite:///~/x.db, as maintd.store.db.normalise_url reads it


class SQLite:
    """The journal in maintd's SQLite file (WAL, as maintd.store.db sets it)."""

    def __init__(self, url: str) -> None:
        self._path = sqlite_path(url)
        self._conn: sqlite3.Connection | None = None

    def _connect(self) -> sqlite3.Connection:
        import sqlite3  # here: on PostgreSQL the intake never loads SQLite (~1 MB of RSS)

        if self._conn is None:
            # mode=rw: a wrong path is an error here, not a new empty database without the journal.
            uri = f"file:{urllib.parse.quote(self._path)}?mode=rw"
            conn = sqlite3.connect(
                uri, uri=True, isolation_level=None, timeout=SQLITE_BUSY_MS / 1000, check_same_thread=False
            )
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_MS}")
            # It only appends to the journal and looks keys up by index: 256 KiB of page cache
            # a connection rather than SQLite's 2 MiB default (RSS after 20,000 alerts in
            # webhooks of 100: 36.4 against 39.8 MB).
            conn.execute("PRAGMA cache_size=-256")
            self._conn = conn
        return self._conn

    def insert(self, rows: Sequence[Row]) -> list[int]:
        # One statement, committed on its own (autocommit): atomic, holding the write lock from
        # its first row to its commit, in one sqlite3_step rather than a step per row plus
        # BEGIN, COMMIT and a look-up of the last id (30 against 34 us for 4 rows, alone).
        import sqlite3

        params = [
            value
            for r in rows
            for value in (_sqlite_time(r.received_at), r.source, r.actor, r.integration, r.dedup_key, r.body)
        ]
        try:
            last = self._connect().execute(_sqlite_insert(len(rows)), params).lastrowid
        except sqlite3.Error as exc:
            refused = isinstance(exc, sqlite3.IntegrityError | sqlite3.DataError)
            raise Unavailable(f"SQLite: {exc}", refused=refused) from exc
        assert last is not None
        # Nobody else inserted during the statement: its rows took the ids just below the last
        # one, in order (AUTOINCREMENT: the largest id ever used + 1, row by row).
        return list(range(last - len(rows) + 1, last + 1))

    def integration(self, key_hash: str) -> Found | None:
        row = self._one("SELECT name, kind, disabled_at FROM integrations WHERE key_hash = ?", key_hash)
        return Found(row[0], row[1]) if row is not None and row[2] is None else None

    def token(self, token_hash: str) -> TokenFound | None:
        sql = "SELECT name, role, last_used_at, revoked_at FROM api_tokens WHERE token_hash = ?"
        row = self._one(sql, token_hash)
        if row is None or row[3] is not None:
            return None
        return TokenFound(row[0], row[1], utc(datetime.fromisoformat(row[2])) if row[2] else None)

    def touch(self, name: str, now: datetime) -> None:
        import sqlite3

        try:
            self._connect().execute(
                "UPDATE api_tokens SET last_used_at = ? WHERE name = ?", (_sqlite_time(now), name)
            )
        except sqlite3.Error as exc:
            raise Unavailable(f"SQLite: {exc}") from exc

    def ping(self) -> None:
        self._one("SELECT count(*) FROM alert_intake WHERE 0")

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _one(self, sql: str, *params: Any) -> Any:
        import sqlite3

        try:
            return self._connect().execute(sql, params).fetchone()
        except sqlite3.Error as exc:
            raise Unavailable(f"SQLite: {exc}") from exc


@functools.lru_cache(maxsize=64)
def _sqlite_insert(n: int) -> str:
    """INSERT of ``n`` rows in one statement (6 parameters a row: 500 rows stay far under
    SQLite's 32,766)."""
    return f"INSERT INTO alert_intake ({COLUMNS}) VALUES " + ", ".join(["(?, ?, ?, ?, ?, ?)"] * n)


def _sqlite_time(when: datetime) -> str:
    # What SQLAlchemy's DateTime stores on SQLite (maintd.store.base.UTCDateTime): naive UTC text.
    # isoformat, not strftime: the same text in half the time (once a row, in the writer).
    if when.tzinfo is not UTC:
        when = utc(when)
    return when.replace(tzinfo=None).isoformat(" ", "microseconds")


class Postgres:
    """The journal on PostgreSQL, through psycopg 3 (imported only here: it costs ~9 MB)."""

    def __init__(self, url: str) -> None:
        rest = url.partition("://")[2]
        self._conninfo = "postgresql://" + rest  # libpq reads the URL itself, percent-escapes and all
        given = urllib.parse.parse_qs(urllib.parse.urlsplit(url).query)
        self._options = {k: v for k, v in PG_CONNECT.items() if k not in given}
        self._conn: psycopg.Connection[Any] | None = None

    def _connect(self) -> psycopg.Connection[Any]:
        import psycopg

        if self._conn is None or self._conn.closed:
            # Autocommit: each of the intake's statements is a transaction of its own, so a
            # read leaves no transaction open (VACUUM) and an insert commits without a second
            # round trip.
            self._conn = psycopg.connect(self._conninfo, autocommit=True, **self._options)  # type: ignore[arg-type]
        return self._conn

    def insert(self, rows: Sequence[Row]) -> list[int]:
        params: list[Any]
        if len(rows) <= PG_VALUES_ROWS:
            sql, params = _pg_values(len(rows)), [value for row in rows for value in row]
        else:
            sql, params = _PG_INSERT, [list(column) for column in zip(*rows, strict=True)]

        def run(conn: psycopg.Connection[Any]) -> list[int]:
            # The ids are taken from the sequence in the order the rows are listed (VALUES) or
            # unnest yields them (the lists' order); sorted, so the answer does not lean on
            # RETURNING's order.
            return sorted(row[0] for row in conn.execute(sql, params).fetchall())

        ids: list[int] = self._run(run)
        return ids

    def integration(self, key_hash: str) -> Found | None:
        sql = "SELECT name, kind, disabled_at FROM integrations WHERE key_hash = %s"
        row = self._one(sql, key_hash)
        return Found(row[0], row[1]) if row is not None and row[2] is None else None

    def token(self, token_hash: str) -> TokenFound | None:
        sql = "SELECT name, role, last_used_at, revoked_at FROM api_tokens WHERE token_hash = %s"
        row = self._one(sql, token_hash)
        if row is None or row[3] is not None:
            return None
        return TokenFound(row[0], row[1], row[2])

    def touch(self, name: str, now: datetime) -> None:
        sql = "UPDATE api_tokens SET last_used_at = %s WHERE name = %s"
        self._run(lambda conn: conn.execute(sql, (now, name)))

    def ping(self) -> None:
        self._one("SELECT count(*) FROM alert_intake WHERE false")

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _one(self, sql: str, *params: Any) -> Any:
        return self._run(lambda conn: conn.execute(sql, params).fetchone())

    def _run(self, work: Any) -> Any:
        import psycopg

        was_open = self._conn is not None and not self._conn.closed
        try:
            conn = self._connect()
            return work(conn)
        except psycopg.Error as exc:
            gone = self._conn is not None and (self._conn.closed or self._conn.broken)
            if gone:
                self.close()  # connect afresh next time
            refused = isinstance(exc, psycopg.IntegrityError | psycopg.DataError)
            raise Unavailable(_first_line(exc), refused=refused, lost=was_open and gone) from exc


# One statement for any number of rows: six arrays, one a column, in binary (no text escaping);
# a fixed text that psycopg parses once and prepares. 100 rows: 0.3 ms of CPU against 2.0 ms for
# executemany (a pipeline, a result per row).
_PG_INSERT = (
    f"INSERT INTO alert_intake ({COLUMNS}) SELECT * FROM unnest("
    "%b::timestamptz[], %b::text[], %b::text[], %b::text[], %b::text[], %b::bytea[]) RETURNING id"
)

# A commit of a few rows is the usual one at batch 1 (a commit holds what arrived during the
# last), and psycopg's array dumping is most of unnest's cost there: up to this many rows, a
# VALUES list of binary parameters. Client CPU an insert (2026-11-29, 2 vCPU EPYC): 1 row
# 135 against 290 us, 8 rows 165 against 271; 10 rows 429 against 239, so not beyond.
PG_VALUES_ROWS = 8


@functools.lru_cache(maxsize=PG_VALUES_ROWS)
def _pg_values(n: int) -> str:
    values = ", ".join(["(%b, %b, %b, %b, %b, %b)"] * n)
    return f"INSERT INTO alert_intake ({COLUMNS}) VALUES {values} RETURNING id"


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
