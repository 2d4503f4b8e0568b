"""The executor's own alerts (``MaintdBrokerDown``, ``MaintdRunsLost``), through the alert pipeline.

They are native alerts like any other: deduplicated by their labels (a repeat updates the open
alert, it opens no second incident), muted, classified and paged by the plan's rules.

``MaintdRunsLost`` (warning): one alert per queue, raised by a reaper sweep that reaped runs;
later sweeps with more losses update it (the counts add up since it opened, kept in its
annotations). The first sweep that reaps nothing once ``QUIET`` has passed since the last loss
resolves it: the runs lost in one broker failure reach their deadlines over several sweeps, and
resolving at the first empty one would flap. Its state is the store's (the open alert's
``last_received_at`` is the last loss), so a scheduler taking over resolves its predecessor's.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from maintd.alerts.fingerprint import fingerprint
from maintd.alerts.model import AlertIn, AlertStatus, Severity
from maintd.incidents.pipeline import ingest
from maintd.lease import LeaseLost
from maintd.plan.loader import LoadedPlan
from maintd.store.db import Store
from maintd.store.events import SYSTEM
from maintd.store.models import AlertRow

log = logging.getLogger(__name__)
LOST = "MaintdRunsLost"
QUIET = timedelta(minutes=10)  # MaintdRunsLost resolves once no run was lost for this long
SHOWN = 10  # tasks named in its summary, run ids in its annotations
ACTION = (
    "messages sent to the Celery broker were never worked: check the broker's persistence (Redis "
    "appendonly, RabbitMQ durable queues) and restarts, and the workers' logs; the runs are interrupted "
    "(stop reason lost, run.interrupted events) and run again at their retry or next schedule"
)


def record(
    store: Store, now: datetime, loaded: LoadedPlan, alert: AlertIn, on_alert: Callable[[], None]
) -> bool:
    """Ingest ``alert`` in a transaction of its own; False (logged) when it could not be recorded.

    A lost lease is raised: the caller steps down rather than carry on as the holder.
    """
    try:
        with store.write() as session:
            ingest(session, [alert], now=now, settings=loaded.plan.incidents, actor=SYSTEM)
    except LeaseLost:
        raise
    except Exception:
        log.exception("could not record the alert %s (%s)", alert.labels.get("alertname"), alert.status.value)
        return False
    on_alert()  # the engine's loop pages for the incident it may have opened
    return True


def open_alert(session: Session, labels: dict[str, str]) -> AlertRow | None:
    """The firing alert with exactly these labels, if any (by its identity, as dedup finds it)."""
    return session.scalar(
        select(AlertRow).where(
            AlertRow.dedup_key == fingerprint(labels), AlertRow.status == AlertStatus.firing.value
        )
    )


class RunsLost:
    """``MaintdRunsLost`` for one queue, after each of the lease holder's reaper sweeps."""

    def __init__(self, *, store: Store, queue: str, on_alert: Callable[[], None]) -> None:
        self.store = store
        self.labels = {"alertname": LOST, "component": "executor", "queue": queue}
        self.on_alert = on_alert
        self.firing: bool | None = None  # None: not known yet (an earlier holder may have raised it)

    def after_sweep(self, loaded: LoadedPlan, now: datetime, lost: list[tuple[str, str]]) -> None:
        """Raise or update the alert for ``lost`` (run id, task); resolve it after QUIET without a loss."""
        if not lost and self.firing is False:
            return  # the usual sweep: nothing lost, nothing firing (no query)
        with self.store.read() as session:
            row = open_alert(session, self.labels)
        if lost:
            alert = self._firing(row, lost, now)
        elif row is None or now - row.last_received_at < QUIET:
            self.firing = row is not None
            return
        else:
            summary = f"no run lost on queue {self.labels['queue']} for {QUIET}"
            alert = AlertIn(
                source="native", labels=dict(self.labels), status=AlertStatus.resolved, summary=summary
            )
        if record(self.store, now, loaded, alert, self.on_alert):
            self.firing = alert.status is AlertStatus.firing

    def _firing(self, row: AlertRow | None, lost: list[tuple[str, str]], now: datetime) -> AlertIn:
        """The alert for ``lost``, counted with what the open ``row`` (if any) counted before."""
        before = row.annotations if row is not None else {}
        counted = before.get("lost_runs", "0")
        total = (int(counted) if counted.isdigit() else 0) + len(lost)
        tasks = sorted({*filter(None, before.get("tasks", "").split(", ")), *(task for _, task in lost)})
        queue = self.labels["queue"]
        since = row.starts_at if row is not None else now
        summary = (
            f"{total} run(s) sent to workers on queue {queue} lost since {since:%Y-%m-%d %H:%M} UTC, "
            f"tasks: {some(tasks)}"
        )
        annotations = {
            "queue": queue,
            "lost_runs": str(total),
            "lost_last_sweep": str(len(lost)),
            "tasks": ", ".join(tasks),
            "runs": some([run_id for run_id, _ in lost]),
            "action": ACTION,
        }
        return AlertIn(
            source="native",
            labels=dict(self.labels),
            annotations=annotations,
            severity=Severity.warning,
            summary=summary,
        )


def some(names: list[str]) -> str:
    """The first SHOWN of ``names``, and how many more."""
    more = f" and {len(names) - SHOWN} more" if len(names) > SHOWN else ""
    return ", ".join(names[:SHOWN]) + more
