"""One active scheduler across processes: a lease row in PostgreSQL with an expiry and a fencing token.

Why a row and not only an advisory lock: an advisory lock dies with its connection, which is
what we want for a SIGKILLed holder, but a *paused* holder (SIGSTOP, a VM freeze, a long GC)
keeps its connection, so its lock lives on and no standby could ever take over. The row has
both halves:

- ``expires_at`` (the database's clock, never the engine's injected one): a holder renews every
  ``ttl / 3``; a paused holder stops renewing and loses the lease after ``ttl``.
- ``holder_pid``: the backend of the holder's dedicated lease connection. A holder that dies
  closes it (the kernel does that for a SIGKILLed process), and a standby takes over at once
  instead of waiting for the expiry: the advisory lock's good half.
- ``epoch``, the fencing token: +1 at every takeover. Every transaction the holder's scheduler
  tick begins first reads its lease row ``FOR SHARE`` (``Lease.call``): a takeover's UPDATE
  waits for such a transaction to end, and a transaction that starts after the takeover finds
  another epoch and fails with ``LeaseLost``. So each committed write of a holder committed
  while it held the lease. The check also sets ``idle_in_transaction_session_timeout`` for
  the transaction: a holder paused in the middle of one is disconnected by PostgreSQL after
  ``ttl`` instead of blocking the takeover.

The table is ``LeaseRow`` (migration 0008); only PostgreSQL uses it: SQLite has one process
by definition.
"""

from __future__ import annotations

import contextvars
import logging
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol, TypeVar

from sqlalchemy import Connection, create_engine, event, text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, SessionTransaction
from sqlalchemy.pool import NullPool

from maintd.store.db import normalise_url

log = logging.getLogger(__name__)
T = TypeVar("T")

TABLE = "maintd_leases"
POLL = 0.5  # seconds between a standby's tries: the bound on a takeover from a dead holder
SCHEDULER = "scheduler"  # the one lease so far: the scheduler loop with its timers, claims and dispatcher
# Free when expired, or when the holder's lease connection is gone (it died): no wait for expiry.
_TAKE = f"""
UPDATE {TABLE} AS l SET holder = :holder, epoch = l.epoch + 1, holder_pid = pg_backend_pid(),
    acquired_at = clock_timestamp(), expires_at = clock_timestamp() + make_interval(secs => :ttl)
WHERE l.name = :name AND (l.expires_at <= clock_timestamp()
    OR NOT EXISTS (SELECT 1 FROM pg_stat_activity a WHERE a.pid = l.holder_pid))
RETURNING l.epoch"""
_FIRST = f"""
INSERT INTO {TABLE} (name, holder, epoch, holder_pid, acquired_at, expires_at)
VALUES (:name, :holder, 1, pg_backend_pid(), clock_timestamp(),
    clock_timestamp() + make_interval(secs => :ttl))
ON CONFLICT (name) DO NOTHING
RETURNING epoch"""
_RENEW = f"""
UPDATE {TABLE} SET expires_at = clock_timestamp() + make_interval(secs => :ttl), holder_pid = pg_backend_pid()
WHERE name = :name AND holder = :holder AND epoch = :epoch AND expires_at > clock_timestamp()
RETURNING epoch"""
_FENCE = f"""
SELECT epoch FROM {TABLE}
WHERE name = :name AND holder = :holder AND epoch = :epoch AND expires_at > clock_timestamp()
FOR SHARE"""
_RELEASE = f"UPDATE {TABLE} SET expires_at = clock_timestamp() WHERE name = :name AND holder = :holder"


class LeaseLost(Exception):
    """This process no longer holds the lease: it must not act as the scheduler."""


class Gate(Protocol):
    """What the engine's scheduler loop asks before and while it ticks."""

    def held(self) -> bool:
        """True while this process may tick."""

    def call(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn`` with every transaction it begins fenced by the lease."""


class Unleased:
    """One process by definition (SQLite, or tests): always held, nothing fenced."""

    def held(self) -> bool:
        return True

    def call(self, fn: Callable[..., T], *args: Any) -> T:
        return fn(*args)


UNLEASED = Unleased()

# The lease whose fence the current thread's transactions pass (asyncio.to_thread copies it).
_fenced_by: contextvars.ContextVar[Lease | None] = contextvars.ContextVar("maintd_lease", default=None)


class Lease:
    """This process's claim on one named lease, kept by a thread on a dedicated connection.

    ``start()`` begins trying to acquire (a standby tries every ``poll`` seconds, 0.5 by default) and, once
    held, renews every ``ttl / 3``. ``lost`` is set once a held lease is lost (the renewal
    or a fenced transaction found another holder or the expiry); it is never re-acquired by
    the same object: the process steps down (``maintd serve`` exits and its supervisor
    starts it again, as a standby).
    """

    def __init__(
        self, url: str, *, holder: str, ttl: float = 15.0, poll: float | None = None, name: str = SCHEDULER
    ) -> None:
        if ttl <= 0:
            raise ValueError(f"the lease timeout must be positive, not {ttl}")
        self.name = name
        self.holder = holder
        self.ttl = ttl
        self.poll = poll if poll is not None else min(POLL, ttl / 4)
        self.epoch: int | None = None
        self.acquired = threading.Event()
        self.lost = threading.Event()
        self.reason = ""
        self.on_lost: Callable[[], None] | None = None  # called once, from the keeper thread or a tick
        self._valid_until = 0.0  # time.monotonic(): a renewal sent before this may still count
        self._db = create_engine(normalise_url(url), poolclass=NullPool, isolation_level="AUTOCOMMIT")
        self._conn: Connection | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- the keeper thread ----------------------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(target=self._keep, name=f"maintd-lease-{self.name}", daemon=True)
        self._thread.start()

    def stop(self, *, release: bool = True) -> None:
        """Stop renewing; with ``release``, expire a held lease now so a standby needs no wait."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.ttl)
        if release and self.epoch is not None and not self.lost.is_set():
            try:
                with self._db.connect() as conn:
                    conn.execute(text(_RELEASE), {"name": self.name, "holder": self.holder})
            except SQLAlchemyError as exc:
                log.warning("could not release the %s lease (it expires by itself): %s", self.name, exc)
        if self._conn is not None:
            self._conn.close()
        self._db.dispose()

    def _keep(self) -> None:
        while not self._stop.is_set() and not self.lost.is_set():
            try:
                if self.epoch is None:
                    self.try_acquire()
                else:
                    self.renew()
            except SQLAlchemyError as exc:
                self._drop_connection()
                log.warning("the %s lease: database error: %s", self.name, str(exc).splitlines()[0])
                if self.epoch is not None and time.monotonic() >= self._valid_until:
                    self._lose("could not renew the lease before it expired (database unreachable)")
            wait = self.poll if self.epoch is None else self.ttl / 3
            self._stop.wait(wait)

    def _connection(self) -> Connection:
        if self._conn is None or self._conn.closed or self._conn.invalidated:
            self._conn = self._db.connect()
            # Never hang behind a paused holder's transaction longer than a lease period.
            self._conn.execute(text(f"SET lock_timeout = {int(self.ttl * 1000)}"))
        return self._conn

    def _drop_connection(self) -> None:
        if self._conn is not None:
            self._conn.invalidate()
            self._conn.close()
            self._conn = None

    def try_acquire(self) -> bool:
        """One attempt: take the lease if it is free, expired or its holder's connection is gone."""
        conn = self._connection()
        params = {"name": self.name, "holder": self.holder, "ttl": self.ttl}
        sent = time.monotonic()
        epoch = conn.execute(text(_TAKE), params).scalar()
        if epoch is None:
            epoch = conn.execute(text(_FIRST), params).scalar()
        if epoch is None:
            return False
        self.epoch = int(epoch)
        self._valid_until = sent + self.ttl
        log.info("acquired the %s lease (epoch %d) as %s", self.name, self.epoch, self.holder)
        self.acquired.set()
        return True

    def renew(self) -> None:
        conn = self._connection()
        sent = time.monotonic()
        params = {"name": self.name, "holder": self.holder, "epoch": self.epoch, "ttl": self.ttl}
        if conn.execute(text(_RENEW), params).scalar() is None:
            self._lose("the lease expired or another process took it over")
            return
        self._valid_until = sent + self.ttl

    def _lose(self, reason: str) -> None:
        if not self.lost.is_set():
            self.reason = reason
            log.error("lost the %s lease (epoch %s): %s", self.name, self.epoch, reason)
            self.lost.set()
            if self.on_lost is not None:
                self.on_lost()

    # -- the gate --------------------------------------------------------------------------

    def held(self) -> bool:
        return self.epoch is not None and not self.lost.is_set() and time.monotonic() < self._valid_until

    def call(self, fn: Callable[..., T], *args: Any) -> T:
        if not self.held():
            raise LeaseLost(f"this process does not hold the {self.name} lease")
        token = _fenced_by.set(self)
        try:
            return fn(*args)
        finally:
            _fenced_by.reset(token)

    def check(self, connection: Connection) -> None:
        """In a transaction just begun: hold the lease row shared until it ends, or raise LeaseLost."""
        timeout = int(self.ttl * 1000)
        connection.execute(text(f"SET LOCAL idle_in_transaction_session_timeout = {timeout}"))
        params = {"name": self.name, "holder": self.holder, "epoch": self.epoch}
        if connection.execute(text(_FENCE), params).scalar() is None:
            self._lose("a fenced transaction found another holder or the expiry")
            raise LeaseLost(f"the {self.name} lease (epoch {self.epoch}) is no longer held")


@event.listens_for(Session, "after_begin")
def _fence(session: Session, transaction: SessionTransaction, connection: Connection) -> None:
    lease = _fenced_by.get()
    if lease is not None and connection.dialect.name == "postgresql":
        lease.check(connection)
