"""The log of a receiver that keeps failing: once when it starts, a summary while it stays down,
once when it is back; each attempt only at DEBUG.

Every attempt is already a row of ``notification_attempts`` and an event, and is retried on
its backoff (``notify.policy``). A line per attempt told nothing more: with the example plan
and no SMTP server, 18 warnings in the first second and a burst on every backoff step.

A transient failure (refused, no answer, 5xx) is the receiver's: it is counted per endpoint
(scheme, host and port, as in ``notify.bulkhead``), so an SMTP server that is down is one
warning however many people's addresses go through it. A permanent one (401, 404, a bad
URL) is the channel's own URL, and is counted per URL. A delivery ends both. The state is
this process's, in memory: after a restart a receiver still down is reported again.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta

from maintd.clock import Clock
from maintd.notify.bulkhead import endpoint
from maintd.notify.transport import TransportError, redact

log = logging.getLogger(__name__)

REPEAT = timedelta(minutes=10)  # how often a receiver still failing is summarised
WHERE = "every attempt: `maintd notifications list` (docs/notifications.md#when-a-receiver-fails)"


@dataclass
class _Failing:
    since: datetime
    reported: datetime  # when its last warning was logged
    attempts: int = 1  # failed since ``since``
    unreported: int = 0  # failed since ``reported``


class ReceiverHealth:
    """Which receivers are failing, and the lines saying so (thread-safe: sends run in threads)."""

    def __init__(self, clock: Clock, *, repeat: timedelta = REPEAT) -> None:
        self.clock = clock
        self.repeat = repeat
        self._lock = threading.Lock()
        self._failing: dict[str, _Failing] = {}

    def attempted(self, url: str, error: TransportError | None, *, notification: int) -> None:
        """An attempt to send ``notification`` on the channel ``url`` ended: delivered (``error``
        None) or not."""
        if error is None:
            self._delivered(url)
        else:
            self._failed(url, error, notification)

    def _failed(self, url: str, error: TransportError, notification: int) -> None:
        key = url if error.permanent else endpoint(url)
        now, reason = self.clock.now(), str(error)
        log.debug("notification %s to %s failed: %s", notification, redact(url), reason)
        with self._lock:
            state = self._failing.get(key)
            if state is None:
                self._failing[key] = _Failing(since=now, reported=now)
            else:
                state.attempts += 1
                state.unreported += 1
                if now - state.reported < self.repeat:
                    return
                since_report = now - state.reported
                unreported, state.reported, state.unreported = state.unreported, now, 0
        if state is None:
            then = "each page goes to its next channel" if error.permanent else "retried on the backoff"
            log.warning("notifications to %s are failing: %s; %s; %s", redact(key), reason, then, WHERE)
        else:
            log.warning(
                "notifications to %s still failing since %s: %d failed attempts, %d in the last %s; "
                "last error: %s; %s",
                redact(key),
                f"{state.since:%Y-%m-%d %H:%M:%S} UTC",
                state.attempts,
                unreported,
                _span(since_report),
                reason,
                WHERE,
            )

    def _delivered(self, url: str) -> None:
        # Its receiver answers and its URL is accepted: both ends of a failure.
        with self._lock:
            ended = [(key, self._failing.pop(key)) for key in (endpoint(url), url) if key in self._failing]
        now = self.clock.now()
        for key, state in ended:
            log.info(
                "notifications to %s are delivered again, after %d failed attempts in %s",
                redact(key),
                state.attempts,
                _span(now - state.since),
            )


def _span(delta: timedelta) -> str:
    seconds = max(0, round(delta.total_seconds()))
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    parts = [f"{hours}h" if hours else "", f"{minutes}m" if minutes else "", f"{seconds}s" if seconds else ""]
    return "".join(parts) or "0s"
