"""Running a plan task now on behalf of remediation (to verify, or to renew a certificate).

The run is an ordinary manual run (``scheduler.claims.claim_manual``) executed by the engine's
runner, so it is recorded, audited and raises or resolves alerts like any other run: a
verification that passes resolves the alert that started it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from sqlalchemy import select

from maintd.checks.base import Status
from maintd.clock import Clock
from maintd.plan.loader import LoadedPlan
from maintd.remediation.base import Refused, TaskOutcome
from maintd.runner.runner import Runner
from maintd.scheduler.claims import claim_manual
from maintd.scheduler.orders import RunOrder
from maintd.store.db import Store
from maintd.store.models import RunRow

ACTOR = "remediation"


class TaskRunner:
    """``base.RunTask`` over the engine's runner."""

    def __init__(
        self,
        *,
        store: Store,
        clock: Clock,
        runner: Runner,
        owner: str,
        loaded: Callable[[], LoadedPlan | None],
    ) -> None:
        self.store = store
        self.clock = clock
        self.runner = runner
        self.owner = owner
        self.loaded = loaded

    async def __call__(self, task_name: str, target_name: str) -> TaskOutcome:
        loaded = self.loaded()
        if loaded is None:
            raise Refused("no plan is loaded")
        try:
            task = loaded.plan.task(task_name)
            loaded.plan.target(target_name)
        except KeyError as exc:
            raise Refused(f"the plan has no task or target {exc.args[0]!r}") from None

        def claim() -> RunOrder | None:
            with self.store.write() as session:
                return claim_manual(
                    session,
                    loaded,
                    task,
                    target_name,
                    self.clock.now(),
                    owner=self.owner,
                    dry_run=False,
                    actor=ACTOR,
                )

        order = await asyncio.to_thread(claim)
        if order is None:
            raise Refused(f"task {task_name} is already running on {target_name}")
        await self.runner.run_all([order])
        run_id = order.run_id

        def read() -> TaskOutcome:
            with self.store.read() as session:
                row = session.scalar(select(RunRow).where(RunRow.id == run_id))
                if row is None or row.status is None:
                    return TaskOutcome(run_id, Status.unknown, "the run was not recorded")
                return TaskOutcome(run_id, Status(row.status), row.output or "")

        return await asyncio.to_thread(read)
