"""How many sends an endpoint that hangs may hold at once, so that it cannot take every slot.

A receiver that accepts connections and never answers keeps each send to it waiting for the
notifier's timeout (up to ~20 s). With every page of an outage going to one Slack webhook, that
was every one of the dispatcher's slots, retry after retry, and other incidents' pages, on
other channels, waited behind it.

An endpoint (scheme, host and port of the URL) is *suspect* once a send to it got no answer
in time, until one gets an answer; or while one of its sends has waited longer than
``slow_after``. A suspect endpoint holds at most ``limit`` sends; a send over that is not
tried: its row is put back, due ``DEFER`` later, with no attempt recorded, as nothing was
sent. An endpoint that answers is never limited, so a burst to one busy, healthy webhook
goes out at full speed. The first sends to an endpoint that hangs, before anything is known,
can still hold every slot for one timeout.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from datetime import timedelta
from urllib.parse import urlsplit

DEFER = timedelta(seconds=1)  # a send not tried is due again this much later
SLOW_AFTER = 2.0  # seconds a send may wait before its endpoint counts as suspect


def endpoint(url: str) -> str:
    """What the limit counts by: the URL's scheme and authority (a secret reference as written)."""
    if url.startswith(("env:", "file:")):
        return url
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    return f"{parts.scheme}://{parts.netloc}"


class Bulkhead:
    """Sends in flight and suspicion per endpoint (thread-safe: sends run in worker threads)."""

    def __init__(self, limit: int, *, slow_after: float = SLOW_AFTER) -> None:
        if limit < 1:
            raise ValueError(f"a bulkhead limit must be at least 1, not {limit}")
        self.limit = limit
        self.slow_after = slow_after
        self._lock = threading.Lock()
        self._started: dict[str, list[float]] = defaultdict(list)  # monotonic start of each send
        self._suspect: set[str] = set()

    @contextlib.contextmanager
    def slot(self, url: str) -> Iterator[Send]:
        """A send to ``url``: ``allowed`` says whether it may go; report its end with ``ended``."""
        key = endpoint(url)
        now = time.monotonic()
        with self._lock:
            started = self._started[key]
            suspect = key in self._suspect or any(now - t > self.slow_after for t in started)
            allowed = not suspect or len(started) < self.limit
            if allowed:
                started.append(now)
        send = Send(allowed)
        try:
            yield send
        finally:
            if allowed:
                with self._lock:
                    started.remove(now)
                    if not started:
                        del self._started[key]
                    if send.timed_out:
                        self._suspect.add(key)
                    elif send.answered:
                        self._suspect.discard(key)

    def busy(self, url: str) -> int:
        """Sends in flight to ``url``'s endpoint."""
        with self._lock:
            return len(self._started.get(endpoint(url), ()))


class Send:
    def __init__(self, allowed: bool) -> None:
        self.allowed = allowed
        self.timed_out = False
        self.answered = False

    def ended(self, *, timed_out: bool) -> None:
        """The send is over: it got no answer in time, or the receiver answered (or refused)."""
        self.timed_out, self.answered = timed_out, not timed_out
