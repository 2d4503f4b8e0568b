"""What happens to a notification after an attempt: sent, retried after a backoff, or the next channel.

Transient failures (no answer, 5xx, refused) are retried on the same channel with growing
waits; after ``max_attempts`` of them, or at once after a permanent one (4xx, a bad URL), the
next channel of the person's rules is used. The last channel keeps trying longer, since there
is nothing to fall back to.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from maintd.notify.jobs import Job
from maintd.notify.outbox import FAILED, SENT
from maintd.notify.transport import TransportError

# Waits after the 1st, 2nd, ... transient failure on a channel; the last repeats.
BACKOFF = (
    timedelta(seconds=10),
    timedelta(seconds=30),
    timedelta(minutes=1),
    timedelta(minutes=2),
    timedelta(minutes=5),
)
MAX_ATTEMPTS = 5  # transient failures on a channel before the next channel is tried
MAX_ATTEMPTS_LAST = 10  # on the last channel (~29 min of retries): nothing to fall back to

# The outcome's name (sent, retry, failed), the row's new values and the event's details.
Decision = tuple[str, dict[str, Any], dict[str, Any]]


@dataclass(frozen=True)
class RetryPolicy:
    backoff: tuple[timedelta, ...] = BACKOFF
    max_attempts: int = MAX_ATTEMPTS
    max_attempts_last: int = MAX_ATTEMPTS_LAST

    def decide(self, job: Job, error: TransportError | None, now: datetime) -> Decision:
        """Where ``job``'s row goes after an attempt that ended with ``error`` (None: delivered)."""
        has_next = job.channel + 1 < len(job.rules)
        next_channel = {"channel": job.channel + 1, "attempts": 0}
        if error is None:
            after = job.rules[job.channel].after
            delivered = {} if job.delivered else {"sent_at": now}
            if after is not None and has_next:
                # Still pending: the next channel too, unless an acknowledgement cancels it first.
                due = now + after
                return (
                    "sent",
                    {**delivered, **next_channel, "due_at": due},
                    {"next_channel_at": due.isoformat()},
                )
            return "sent", {**delivered, "status": SENT}, {}
        attempts = job.attempts + 1
        limit = self.max_attempts if has_next else self.max_attempts_last
        if not error.permanent and attempts < limit:
            due = now + self.backoff[min(attempts, len(self.backoff)) - 1]
            values = {"attempts": attempts, "due_at": due, "last_error": str(error)}
            return "retry", values, {"error": str(error), "retry_at": due.isoformat()}
        reason = str(error) if error.permanent else f"gave up after {attempts} attempts: {error}"
        details = {"error": reason, "permanent": error.permanent}
        if has_next:
            values = {**next_channel, "due_at": now, "last_error": reason}
            return "failed", values, {**details, "next_channel": job.channel + 1}
        # Nothing left to try; a row an earlier channel delivered still counts as sent.
        status = SENT if job.delivered else FAILED
        return "failed", {"attempts": attempts, "status": status, "last_error": reason}, details
