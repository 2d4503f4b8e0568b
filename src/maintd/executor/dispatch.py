"""The scheduler's side of the Celery executor: send each claimed run to the queue.

When the broker cannot take a message, the run executes on the scheduler's own runner
instead (it is claimed already; nothing is lost or run twice) and the alert
``MaintdBrokerDown`` fires through the alert pipeline; the first message the broker
takes again resolves it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from celery import Celery  # type: ignore[import-untyped]

from maintd.alerts.model import AlertIn, AlertStatus, Severity
from maintd.clock import Clock
from maintd.executor.celery_app import TASK
from maintd.executor.messages import to_message
from maintd.incidents.pipeline import ingest
from maintd.plan.loader import LoadedPlan
from maintd.runner.runner import Runner
from maintd.scheduler.orders import RunOrder
from maintd.store.db import Store
from maintd.store.events import SYSTEM

log = logging.getLogger(__name__)
ALERTNAME = "MaintdBrokerDown"
LABELS = {"alertname": ALERTNAME, "component": "broker"}


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
        self._tasks: set[asyncio.Task[None]] = set()

    def submit(self, order: RunOrder) -> None:
        task = asyncio.create_task(self._dispatch(order), name=f"dispatch-{order.run_id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _dispatch(self, order: RunOrder) -> None:
        loaded = self.loaded()
        assert loaded is not None  # orders come from a plan
        try:
            await asyncio.to_thread(self._publish, to_message(order, loaded.digest))
        except Exception as exc:  # kombu's OperationalError, a socket error, a timeout: the broker is away
            self.fell_back += 1
            log.error("broker refused run %s (%s); running it here", order.run_id, _first_line(exc))
            self.runner.submit(order)
            if self.broker_down is not True:
                self.broker_down = True
                await asyncio.to_thread(self._alert, loaded, AlertStatus.firing, _first_line(exc))
            return
        self.sent += 1
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
        try:
            with self.store.write() as session:
                ingest(session, [alert], now=self.clock.now(), settings=loaded.plan.incidents, actor=SYSTEM)
        except Exception:
            log.exception("could not record the broker alert (%s)", status.value)
            return
        self.on_alert()

    async def aclose(self) -> None:
        """Wait for messages being sent (their runs are claimed: each must reach a queue or the runner)."""
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)


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
