"""Waking the scheduler of another process: PostgreSQL NOTIFY from API replicas, LISTEN by schedulers.

In one process an alert that opens an incident pokes the engine directly (``Engine.poke``).
Across processes (``--role api`` replicas, a standby ``--role all``), nothing would tell the
scheduler until its next idle wake-up, and its dispatcher only looks every 30 seconds: the
first page of a P1 would wait. So an API process sends ``NOTIFY`` after such a commit, and
the scheduler listens on a connection of its own and pokes its engine. A lost notification
(the listener reconnecting) costs only that delay: the database is still the truth.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from maintd.store.db import Store

log = logging.getLogger(__name__)

CHANNEL = "maintd_scheduler"
RECONNECT = 1.0  # seconds between attempts while the database is away


def sender(store: Store) -> Callable[[], None]:
    """``poke`` for an API process: tell whichever scheduler holds the lease to look now.

    The NOTIFY is sent by a thread of its own, not by the caller: the caller is the event loop
    right after an alert's commit, and a pool checkout, a round trip and a commit there held
    every other request of the replica (with one NOTIFY per alert request, an API replica took
    73 alerts/s at batch 1). Pokes made while a NOTIFY is on its way are folded into one more,
    sent after it: every poke is followed by a NOTIFY that leaves after it.
    """
    wanted = threading.Event()
    lock = threading.Lock()
    thread: list[threading.Thread] = []

    def notify() -> None:
        try:
            with store.engine.connect() as conn:
                conn.execute(text("SELECT pg_notify(:c, '')"), {"c": CHANNEL})
                conn.commit()
        except SQLAlchemyError as exc:  # the scheduler finds the work at its next wake-up anyway
            log.warning("could not wake the scheduler: %s", str(exc).splitlines()[0])

    def notifying() -> None:
        while True:
            wanted.wait()
            wanted.clear()  # before sending: a poke from now on gets a NOTIFY of its own
            notify()

    def send() -> None:
        wanted.set()
        if not thread:
            with lock:
                if not thread:
                    thread.append(threading.Thread(target=notifying, name="maintd-notify", daemon=True))
                    thread[0].start()

    return send


class Listener:
    """A thread that calls ``on_wake`` for every notification on ``CHANNEL``."""

    def __init__(self, url: str, on_wake: Callable[[], None]) -> None:
        # psycopg wants a libpq URL: the SQLAlchemy driver suffix goes.
        self.dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
        self.on_wake = on_wake
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._listen, name="maintd-wakeup", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _listen(self) -> None:
        import psycopg  # here: a process on SQLite never listens, and psycopg is ~9 MB of its RSS

        while not self._stop.is_set():
            try:
                with psycopg.connect(self.dsn, autocommit=True, connect_timeout=5) as conn:
                    conn.execute(f"LISTEN {CHANNEL}")
                    self.on_wake()  # whatever was sent while this was not listening
                    while not self._stop.is_set():
                        for _ in conn.notifies(timeout=0.5, stop_after=1):
                            self.on_wake()
            except psycopg.Error as exc:
                log.warning("listening for wake-ups failed (retrying): %s", str(exc).splitlines()[0])
                self._stop.wait(RECONNECT)
