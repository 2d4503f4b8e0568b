"""The engine's periodic SLO evaluation: every minute, burning SLOs raise alerts, recovered ones
resolve them.

Evaluated in the scheduler's tick, so under the scale-out lease only the lease holder does it.
The next evaluation time is held in memory: after a restart the first tick evaluates at once,
which is harmless (an alert is delivered only when it changes).
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from datetime import datetime, timedelta

from maintd.incidents.pipeline import ingest
from maintd.plan.models import Plan
from maintd.slo.alerts import slo_alerts
from maintd.store.db import Store

EVERY = timedelta(minutes=1)  # the shortest alert window is 5 minutes
log = logging.getLogger(__name__)


class SloWatch:
    def __init__(self, store: Store, *, every: timedelta = EVERY) -> None:
        self.store, self.every = store, every
        self._next_at: datetime | None = None

    def tick(self, now: datetime, plan: Plan, *, maintenance_tasks: Collection[str] = ()) -> bool:
        """Evaluate the plan's SLOs when due; True when alerts were delivered (their incidents'
        timers may be due). A failure is logged and tried again at the next evaluation."""
        if not plan.slos or (self._next_at is not None and now < self._next_at):
            return False
        self._next_at = now + self.every
        try:
            with self.store.read() as session:
                alerts = slo_alerts(session, plan, now)
            if not alerts:
                return False
            with self.store.write() as session:
                # Delivered twice (two processes between leases) is harmless: dedup takes a
                # repeat as an update and drops a resolution of what is no longer open.
                ingest(
                    session,
                    alerts,
                    now=now,
                    settings=plan.incidents,
                    actor="slo",
                    maintenance_tasks=maintenance_tasks,
                )
        except Exception:
            log.exception("evaluating the SLOs failed; trying again in %s", self.every)
            return False
        return bool(alerts)
