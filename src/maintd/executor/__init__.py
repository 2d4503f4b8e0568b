"""Where claimed runs execute: the scheduler's own runner (local) or Celery workers (celery).

The seam is ``Executor.submit(order)``; ``Runner`` is the local one. The Celery one
(maintd.executor.dispatch) sends a JSON message naming the run, and ``maintd worker``
(maintd.executor.worker) rebuilds the order from the stored plan version, runs it on
the same ``Runner`` code path and records it with the same recorder, once.
"""

from __future__ import annotations

import asyncio
from typing import Protocol

from maintd.scheduler.orders import RunOrder


class Executor(Protocol):
    def submit(self, order: RunOrder) -> asyncio.Future[None] | None:
        """Start a claimed run (call from the event loop); its result reaches the store later."""
        ...
