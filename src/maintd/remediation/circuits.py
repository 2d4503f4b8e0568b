"""Named circuit breakers (opened by the ``circuit_breaker`` action), kept in the database."""

from __future__ import annotations

import asyncio
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from maintd.clock import Clock
from maintd.store.db import Store, dialect_insert
from maintd.store.events import Event, append
from maintd.store.models import CircuitRow


def open_circuit(session: Session, name: str, *, until: datetime, reason: str, now: datetime) -> None:
    """Open ``name`` until ``until`` (a later time wins over an earlier one); flushes only."""
    values = {"name": name, "open_until": until, "opened_at": now, "reason": reason}
    stmt = dialect_insert(session)(CircuitRow).values(**values)
    session.execute(stmt.on_conflict_do_update(index_elements=["name"], set_=values))
    append(
        session,
        Event(
            "circuit.opened",
            f"circuit:{name}",
            now,
            "remediation",
            {"until": until.isoformat(), "reason": reason},
        ),
    )


def open_until(session: Session, name: str, now: datetime) -> datetime | None:
    until = session.scalar(select(CircuitRow.open_until).where(CircuitRow.name == name))
    return until if until is not None and until > now else None


def open_circuits(session: Session, now: datetime) -> list[CircuitRow]:
    return list(
        session.scalars(select(CircuitRow).where(CircuitRow.open_until > now).order_by(CircuitRow.name))
    )


class StoreCircuits:
    """``base.Circuits`` over the store, for actions (each call its own transaction, off the loop)."""

    def __init__(self, store: Store, clock: Clock) -> None:
        self.store = store
        self.clock = clock

    async def open(self, name: str, *, until: datetime, reason: str) -> None:
        def write() -> None:
            with self.store.write() as session:
                open_circuit(session, name, until=until, reason=reason, now=self.clock.now())

        await asyncio.to_thread(write)

    async def open_until(self, name: str) -> datetime | None:
        def read() -> datetime | None:
            with self.store.read() as session:
                return open_until(session, name, self.clock.now())

        return await asyncio.to_thread(read)
