"""``maintd worker``'s side: rebuild a run from its message, run it, record it once.

Idempotent: a message is worked only while its run row is ``running`` and its schedule
row still points at that run; taking it sets the run's owner to this worker. The
results are written only for runs this worker still owns (checked under a row lock in
the recording transaction), so a redelivered message whose run was recorded, recovered
or taken by another worker records nothing.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from maintd.clock import Clock
from maintd.executor.messages import from_message
from maintd.incidents.from_runs import alerts_from_streaks
from maintd.incidents.pipeline import ingest
from maintd.plan.loader import LoadedPlan, plan_from_document
from maintd.registry import Registry
from maintd.runner.children import Children
from maintd.runner.recorder import Finished, Streak, record
from maintd.runner.runner import Runner
from maintd.store.db import Store, rowcount
from maintd.store.models import PlanVersionRow, RunRow, ScheduleRow
from maintd.wakeup import sender

log = logging.getLogger(__name__)


class OwnedRunner(Runner):
    """The runner, recording only the runs this worker still owns."""

    def _write_sync(self, batch: list[Finished]) -> datetime | None:
        with self.store.write() as session:
            ids = [f.order.run_id for f in batch]
            owned = set(
                session.scalars(
                    select(RunRow.id)
                    .where(RunRow.id.in_(ids), RunRow.state == "running", RunRow.owner == self.owner)
                    .with_for_update()
                )
            )
            mine = [f for f in batch if f.order.run_id in owned]
            for f in batch:
                if f.order.run_id not in owned:
                    log.warning(
                        "run %s was recorded or taken by another process: not recorded", f.order.run_id
                    )
            if not mine:
                return None
            recorded = record(session, mine)
            if self.on_streaks is not None:
                self.on_streaks(session, recorded.streaks)
        return recorded.next_due


class WorkerRuntime:
    """One worker process's store, plans and runner; ``handle`` is called from Celery's threads."""

    def __init__(
        self, *, store: Store, registry: Registry, clock: Clock, owner: str, children: Children | None
    ):
        self.store = store
        self.registry = registry
        self.clock = clock
        self.owner = owner
        self.children = children
        self._plans: dict[str, LoadedPlan] = {}
        self._plans_lock = threading.Lock()
        self._wake_scheduler = sender(store) if store.dialect == "postgresql" else (lambda: None)
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="maintd-worker-loop", daemon=True)
        self._thread.start()
        self.runner = OwnedRunner(
            store=store,
            registry=registry,
            clock=clock,
            owner=owner,
            children=children,
            on_streaks=self._alert_from_runs,
        )
        self._plan_of: dict[str, LoadedPlan] = {}  # run id -> its plan, while it runs (threads pool)

    def handle(self, message: dict[str, Any]) -> str:
        """Work one run message: 'recorded', or 'skipped' when its run is not ours to run."""
        loaded = self.plan(str(message.get("plan", "")))
        order = from_message(message, loaded)
        previous = self._take(order.run_id, order.schedule_id)
        if previous is None:
            log.info("run %s is finished or no longer claimed: message ignored", order.run_id)
            return "skipped"
        if previous != self.owner and self.children is not None:
            self.children.kill_orphans([order.run_id])  # a dead worker's command on this host
        self._plan_of[order.run_id] = loaded
        try:
            asyncio.run_coroutine_threadsafe(self.runner.run_all([order]), self.loop).result()
        finally:
            self._plan_of.pop(order.run_id, None)
        self._wake_scheduler()  # the freed schedule row may be due again soon
        return "recorded"

    def _take(self, run_id: str, schedule_id: int) -> str | None:
        """Make this worker the run's owner if the run is still owed; the owner before, or None."""
        with self.store.write() as session:
            claimed = session.scalar(select(ScheduleRow.running_run_id).where(ScheduleRow.id == schedule_id))
            row = session.execute(
                select(RunRow.owner).where(RunRow.id == run_id, RunRow.state == "running").with_for_update()
            ).first()
            if claimed != run_id or row is None:
                return None
            took = session.execute(
                update(RunRow).where(RunRow.id == run_id, RunRow.state == "running").values(owner=self.owner)
            )
            return str(row.owner) if rowcount(took) == 1 else None

    def plan(self, digest: str) -> LoadedPlan:
        """The plan version a message names, from the database (once per digest)."""
        with self._plans_lock:
            if digest in self._plans:
                return self._plans[digest]
            with self.store.read() as session:
                row = session.scalar(
                    select(PlanVersionRow)
                    .where(PlanVersionRow.digest == digest)
                    .order_by(PlanVersionRow.id.desc())
                    .limit(1)
                )
                if row is None:
                    raise LookupError(f"plan version {digest[:12]} is not in the database")
                document = row.document
            loaded = plan_from_document(document, self.registry, f"<stored plan {digest[:12]}>")
            self._plans[digest] = loaded
            return loaded

    def _alert_from_runs(self, session: Session, streaks: list[Streak]) -> None:
        """As the engine does: runs over their task's alert threshold become alerts, same transaction."""
        alerts = alerts_from_streaks(streaks)
        loaded = self._plan_of.get(streaks[0].finished.order.run_id) if streaks else None
        if alerts and loaded is not None:
            maintenance = frozenset(t.name for t in loaded.plan.tasks if t.mute_alerts)
            ingest(
                session,
                alerts,
                now=self.clock.now(),
                settings=loaded.plan.incidents,
                actor="runner",
                maintenance_tasks=maintenance,
            )

    def close(self, grace: float = 5.0) -> None:
        future = asyncio.run_coroutine_threadsafe(self.runner.stop(grace), self.loop)
        try:
            future.result(timeout=grace + 10)
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(timeout=5)
