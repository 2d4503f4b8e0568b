"""The scheduler's side of the Celery executor: send claimed runs to the queue, in batches.

The runs a tick claims are submitted one by one in the same turn of the event loop; they
are gathered and sent once that turn ends, as messages of several runs each (``chunks``):
one message per run cost the workers a Celery delivery, a claim transaction and a NOTIFY
per run. When the broker cannot take a message, its runs execute on the scheduler's own
runner instead (they are claimed already; nothing is lost or run twice) and the alert
``MaintdBrokerDown`` fires through the alert pipeline; the first message the broker
takes again resolves it.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Callable
from typing import Any

from celery import Celery  # type: ignore[import-untyped]

from maintd.alerts.model import AlertIn, AlertStatus, Severity
from maintd.clock import Clock
from maintd.executor.alerting import record
from maintd.executor.celery_app import TASK
from maintd.executor.messages import to_batch
from maintd.plan.loader import LoadedPlan
from maintd.runner.runner import Runner
from maintd.scheduler.orders import RunOrder
from maintd.store.db import Store

log = logging.getLogger(__name__)
ALERTNAME = "MaintdBrokerDown"
LABELS = {"alertname": ALERTNAME, "component": "broker"}
# Runs a message: what is due is split into about SPREAD messages, so that every thread of two
# workers gets a share (each prefetches a message per thread), but never fewer than MIN_BATCH
# runs a message (a message costs a worker about as much as 10 cheap runs) nor more than
# MAX_BATCH (a message is acknowledged when its last run is recorded; under the default
# runner.concurrency of 64 a worker starts a whole message at once).
SPREAD = 16
MIN_BATCH = 8
MAX_BATCH = 50


class CeleryExecutor:
    """Sends runs to ``queue``; falls back to ``runner`` while the broker refuses them."""

    def __init__(
        self,
        *,
        app: Celery,
        queue: str,
        runner: Runner,
        store: Store,
        clock: Clock,
        loaded: Callable[[], LoadedPlan | None],
        on_alert: Callable[[], None] = lambda: None,
    ) -> None:
        self.app = app
        self.queue = queue
        self.runner = runner
        self.store = store
        self.clock = clock
        self.loaded = loaded
        self.on_alert = on_alert
        self.broker_down: bool | None = None  # None: not known yet
        self.sent = 0
        self.fell_back = 0
        self.messages = 0
        self._tasks: set[asyncio.Task[None]] = set()
        self._pending: list[RunOrder] = []

    def submit(self, order: RunOrder) -> None:
        """Queue a run to send; the runs submitted in this turn of the event loop go out together."""
        if not self._pending:
            asyncio.get_running_loop().call_soon(self._send_pending)
        self._pending.append(order)

    def _send_pending(self) -> None:
        orders, self._pending = self._pending, []
        for batch in chunks(orders):
            task = asyncio.create_task(self._dispatch(batch), name=f"dispatch-{batch[0].run_id}")
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _dispatch(self, orders: list[RunOrder]) -> None:
        loaded = self.loaded()
        assert loaded is not None  # orders come from a plan
        try:
            await asyncio.to_thread(self._publish, to_batch(orders, loaded.digest))
        except Exception as exc:  # kombu's OperationalError, a socket error, a timeout: the broker is away
            self.fell_back += len(orders)
            log.error(
                "broker refused %d run(s) from %s (%s); running them here",
                len(orders),
                orders[0].run_id,
                _first_line(exc),
            )
            for order in orders:
                self.runner.submit(order)
            if self.broker_down is not True:
                self.broker_down = True
                await asyncio.to_thread(self._alert, loaded, AlertStatus.firing, _first_line(exc))
            return
        self.sent += len(orders)
        self.messages += 1
        if self.broker_down is True:
            self.broker_down = False
            await asyncio.to_thread(self._alert, loaded, AlertStatus.resolved, "")

    def _publish(self, message: dict[str, Any]) -> None:
        self.app.send_task(TASK, args=[message], queue=self.queue, retry=False)

    def _alert(self, loaded: LoadedPlan, status: AlertStatus, reason: str) -> None:
        url = _safe(self.app.conf.broker_url)
        summary = (
            f"the Celery broker {url} refuses runs ({reason}): checks run on the scheduler"
            if status is AlertStatus.firing
            else f"the Celery broker {url} takes runs again"
        )
        alert = AlertIn(
            source="native",
            labels=dict(LABELS),
            annotations={"broker": url},
            status=status,
            severity=Severity.critical,
            summary=summary,
        )
        record(self.store, self.clock.now(), loaded, alert, self.on_alert)

    async def aclose(self) -> None:
        """Wait for messages being sent (their runs are claimed: each must reach a queue or the runner)."""
        if self._pending:
            self._send_pending()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)


def chunks(orders: list[RunOrder]) -> list[list[RunOrder]]:
    """``orders`` in consecutive messages of MIN_BATCH..MAX_BATCH runs, about SPREAD of them."""
    size = min(MAX_BATCH, max(MIN_BATCH, math.ceil(len(orders) / SPREAD)))
    return [orders[i : i + size] for i in range(0, len(orders), size)]


def _first_line(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text.splitlines()[0][:300]


def _safe(url: str | None) -> str:
    """The broker's address without its password."""
    if not url:
        return "(none)"
    scheme, sep, rest = url.partition("://")
    if "@" in rest:
        rest = "***@" + rest.rsplit("@", 1)[1]
    return scheme + sep + rest
