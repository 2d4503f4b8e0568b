"""Running a change's watched checks now: manual runs of plan tasks, recorded like any run.

Each watched task runs once on each of its targets through the scheduler's manual claim
(``claim_manual``), so a round of the health watch is ordinary runs in the run history,
and a failing one raises its task's alert as usual.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Protocol

from sqlalchemy import select

from maintd.checks.base import Status
from maintd.clock import Clock
from maintd.plan.loader import LoadedPlan
from maintd.runner.runner import Runner
from maintd.scheduler.claims import claim_manual
from maintd.scheduler.orders import RunOrder
from maintd.store.db import Store
from maintd.store.models import RunRow

BUSY_POLLS = 50  # a watched task already running on a target: wait for it this many times...
BUSY_POLL_S = 0.2  # ...this long each (wall time: it is a real run finishing), then count unknown


@dataclass(frozen=True)
class Health:
    task: str
    target: str
    status: Status
    run_id: str | None
    output: str

    def record(self) -> dict[str, object]:
        return {
            "task": self.task,
            "target": self.target,
            "status": self.status.value,
            "run_id": self.run_id,
            "output": self.output[:500],
        }

    def describe(self) -> str:
        first = self.output.strip().splitlines()[0] if self.output.strip() else ""
        return f"{self.task} on {self.target} is {self.status.value}" + (f": {first[:200]}" if first else "")


class HealthChecks(Protocol):
    async def run(self, loaded: LoadedPlan, tasks: list[str], *, actor: str) -> list[Health]:
        """Run each task once on each of its targets; one result per pair (never raises for a check)."""


class RunnerChecks:
    """Watched checks through a Runner (the engine's own, or one a command made)."""

    def __init__(self, *, store: Store, runner: Runner, clock: Clock, owner: str) -> None:
        self.store = store
        self.runner = runner
        self.clock = clock
        self.owner = owner

    async def run(self, loaded: LoadedPlan, tasks: list[str], *, actor: str) -> list[Health]:
        pairs: list[tuple[str, str]] = []
        missing: list[Health] = []
        for name in tasks:
            try:
                task = loaded.plan.task(name)
            except KeyError:
                missing.append(Health(name, "-", Status.unknown, None, f"no task {name!r} in the plan"))
                continue
            pairs += [(task.name, t.name) for t in loaded.plan.targets_of(task)]
        run_ids: dict[tuple[str, str], str] = {}
        for _ in range(BUSY_POLLS):
            orders = await asyncio.to_thread(
                self._claim, loaded, [p for p in pairs if p not in run_ids], actor
            )
            run_ids.update({(o.task.name, o.target.name): o.run_id for o in orders})
            await self.runner.run_all(orders)
            if len(run_ids) == len(pairs):
                break
            await asyncio.sleep(BUSY_POLL_S)
        rows = await asyncio.to_thread(self._runs, list(run_ids.values()))
        found = [
            _health(task, target, rows.get(run_ids[(task, target)]) if (task, target) in run_ids else None)
            for task, target in pairs
        ]
        return missing + found

    def _claim(self, loaded: LoadedPlan, pairs: list[tuple[str, str]], actor: str) -> list[RunOrder]:
        orders: list[RunOrder] = []
        with self.store.write() as session:
            for task, target in pairs:
                order = claim_manual(
                    session,
                    loaded,
                    loaded.plan.task(task),
                    target,
                    self.clock.now(),
                    owner=self.owner,
                    dry_run=False,
                    actor=actor,
                )
                if order is not None:
                    orders.append(order)
        return orders

    def _runs(self, run_ids: list[str]) -> dict[str, RunRow]:
        with self.store.read() as session:
            rows = session.scalars(select(RunRow).where(RunRow.id.in_(run_ids))).all()
            session.expunge_all()
        return {r.id: r for r in rows}


def _health(task: str, target: str, row: RunRow | None) -> Health:
    if row is None:
        return Health(
            task, target, Status.unknown, None, "another run of this task kept running; not checked"
        )
    if row.status is None:
        return Health(task, target, Status.unknown, row.id, f"the run was not recorded ({row.state})")
    return Health(task, target, Status(row.status), row.id, row.output or "")
