"""Run a task of a loaded engine by hand, as ``maintd run`` does, and read the audit it left."""

from __future__ import annotations

from sqlalchemy import select

from maintd.engine import Engine
from maintd.scheduler.claims import claim_manual
from maintd.scheduler.orders import RunOrder
from maintd.store.db import Store
from maintd.store.models import EventRow
from tests.conftest import run


def run_by_hand(engine: Engine, task: str, target: str, *, dry_run: bool = False) -> RunOrder:
    """Claim ``task`` on ``target`` now (a manual run by user:ada) and run it to the end."""
    loaded = engine.loaded
    assert loaded is not None, "reload the engine first"
    with engine.store.write() as s:
        order = claim_manual(
            s,
            loaded,
            loaded.plan.task(task),
            target,
            engine.clock.now(),
            owner="t",
            dry_run=dry_run,
            actor="user:ada",
        )
    assert order is not None, f"{task} on {target} could not be claimed"

    async def go() -> None:
        await engine.runner.run_all([order])
        await engine.runner.stop(0)

    run(go())
    return order


def action_events(store: Store) -> list[EventRow]:
    """The audit events of actions (``action.planned``, ``action.applied``), oldest first."""
    with store.read() as s:
        stmt = select(EventRow).where(EventRow.kind.like("action.%")).order_by(EventRow.id)
        return list(s.scalars(stmt).all())
