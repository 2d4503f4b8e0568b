"""``maintd worker``'s side: rebuild the runs of a message, run them, record each once.

Idempotent, run by run: a run of a message is worked only while its run row is ``running``
and its schedule row still points at it; taking the message's runs (one transaction) sets
their owner to this worker. Results are written only for runs this worker still owns
(checked under a row lock in the recording transaction), so a redelivered message records
only its runs nobody recorded, recovered or took meanwhile. The runs of a message run at
once and are recorded as they finish, in the runner's group commits (shared by every
thread of the pool): a slow run holds back only its message's acknowledgement.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from maintd.clock import Clock
from maintd.executor.messages import from_batch
from maintd.executor.reaper import late_result
from maintd.incidents.from_runs import alerts_from_streaks
from maintd.incidents.pipeline import ingest
from maintd.plan.loader import LoadedPlan, plan_from_document
from maintd.registry import Registry
from maintd.runner.children import Children
from maintd.runner.recorder import RUNS, SCHEDULES, Finished, Streak, record
from maintd.runner.runner import Runner
from maintd.scheduler.orders import RunOrder
from maintd.store.db import Store
from maintd.store.models import PlanVersionRow, RunRow
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
                    # [executor] reaped as lost meanwhile: say the result came late, count nothing
                    late_result(session, f.order.run_id, f.result.status.value, f.finished_at, self.owner)
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
        """Work one message: 'recorded' (its runs owed were run and recorded), or 'skipped' when
        none of its runs is ours to run."""
        loaded = self.plan(str(message.get("plan", "")))
        # Runs at once in this process, over all its threads' messages: the plan's, as a scheduler's.
        self.runner.set_concurrency(loaded.plan.runner.concurrency)
        orders = from_batch(message, loaded)
        previous = self._take(orders)
        if not previous:
            log.info("runs %s are finished or no longer claimed: message ignored", _ids(orders))
            return "skipped"
        mine = [o for o in orders if o.run_id in previous]
        if len(mine) < len(orders):
            gone = (o for o in orders if o.run_id not in previous)
            log.info("runs %s are finished or no longer claimed", _ids(gone))
        orphans = [r for r, owner in previous.items() if owner != self.owner]
        if orphans and self.children is not None:
            self.children.kill_orphans(orphans)  # a dead worker's commands on this host
        for order in mine:
            self._plan_of[order.run_id] = loaded
        try:
            asyncio.run_coroutine_threadsafe(self.runner.run_all(mine), self.loop).result()
        finally:
            for order in mine:
                self._plan_of.pop(order.run_id, None)
        self._wake_scheduler()  # one NOTIFY a message: the freed schedule rows may be due again soon
        return "recorded"

    def _take(self, orders: list[RunOrder]) -> dict[str, str]:
        """Make this worker the owner of the runs still owed; {run id: its owner before}.

        One statement: lock the runs still ``running`` whose schedule row points at them (in
        one order for every worker: no deadlock), set their owner, return the one before.
        """
        owed = (
            select(RUNS.c.id, RUNS.c.owner)
            .join(SCHEDULES, SCHEDULES.c.running_run_id == RUNS.c.id)
            .where(RUNS.c.id.in_([o.run_id for o in orders]), RUNS.c.state == "running")
            .order_by(RUNS.c.id)
            .with_for_update(of=RUNS)
            .cte("owed")
        )
        take = (
            update(RUNS)
            .where(RUNS.c.id == owed.c.id)
            .values(owner=self.owner)
            .returning(RUNS.c.id, owed.c.owner)
        )
        with self.store.write() as session:
            return {r.id: str(r.owner) for r in session.execute(take)}

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
        """As the engine does: runs over their task's alert threshold become alerts, same transaction;
        each under the plan version of its own message (a group commit spans messages)."""
        by_plan: dict[str, tuple[LoadedPlan, list[Streak]]] = {}
        for streak in streaks:
            loaded = self._plan_of.get(streak.finished.order.run_id)
            if loaded is not None:
                by_plan.setdefault(loaded.digest, (loaded, []))[1].append(streak)
        for loaded, mine in by_plan.values():
            alerts = alerts_from_streaks(mine)
            if not alerts:
                continue
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


def _ids(orders: Iterable[RunOrder]) -> str:
    return ", ".join(o.run_id for o in orders)
