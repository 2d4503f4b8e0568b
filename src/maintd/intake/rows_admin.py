"""Looking after the intake's journal by hand: list its rows, let the drain try failed ones
again, drop the ones that will never store (``maintd journal``).

Only a failed row (one with an ``error``, which the drain skips) is retried or dropped: a row
still waiting belongs to the drain, and dropping it would lose alerts that were answered 2xx.
A dropped row's body goes into its ``intake.dropped`` audit event, so nothing accepted is lost
without a trace. Imported by the CLI only (it uses SQLAlchemy; the intake process must not).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from maintd.store.events import Event, append
from maintd.store.intake_tables import AlertIntakeRow

BODY_IN_EVENT = 64 * 1024  # bytes of a dropped body kept in its audit event (its digest is whole)

_ROW = AlertIntakeRow


def journal_rows(session: Session, *, failed_only: bool, limit: int) -> list[AlertIntakeRow]:
    """The oldest rows first, waiting and failed, or failed only."""
    query = select(_ROW).order_by(_ROW.id).limit(limit)
    if failed_only:
        query = query.where(_ROW.error.is_not(None))
    return list(session.scalars(query))


def counts(session: Session) -> dict[str, int]:
    """Rows waiting for the drain and rows failed."""
    failed = func.count().filter(_ROW.error.is_not(None))
    total, failed_rows = session.execute(select(func.count(), failed)).one()
    return {"waiting": int(total) - int(failed_rows), "failed": int(failed_rows)}


def failed_rows(session: Session, ids: Sequence[int] | None) -> tuple[list[AlertIntakeRow], list[str]]:
    """The failed rows named by ``ids`` (all failed rows when None); why each other id is not one."""
    query = select(_ROW).where(_ROW.error.is_not(None)).order_by(_ROW.id)
    if ids is not None:
        query = query.where(_ROW.id.in_(ids))
    found = list(session.scalars(query))
    problems = []
    if ids is not None:
        seen = {row.id for row in found}
        waiting = set(session.scalars(select(_ROW.id).where(_ROW.id.in_(set(ids) - seen))))
        for row_id in ids:
            if row_id in waiting:
                problems.append(f"row {row_id} has not failed: it waits for the drain")
            elif row_id not in seen:
                problems.append(f"no journal row {row_id} (drained, dropped, or never there)")
    return found, problems


def retry(session: Session, rows: Sequence[AlertIntakeRow], *, actor: str, now: datetime) -> None:
    """Clear the rows' errors: the drain takes them again, in order of arrival, at its next poll."""
    # The events first: the UPDATE refreshes the rows' objects, and the events say what failed.
    events = [Event("intake.retried", f"intake:{row.id}", now, actor, describe(row)) for row in rows]
    ids = [row.id for row in rows]
    session.execute(update(_ROW).where(_ROW.id.in_(ids), _ROW.error.is_not(None)).values(error=None))
    append(session, events)


def drop(session: Session, rows: Sequence[AlertIntakeRow], *, actor: str, now: datetime) -> None:
    """Delete the failed rows; each one's body is kept in its ``intake.dropped`` event."""
    # The events first, as in ``retry``: they read the rows the DELETE then takes out of the session.
    events = []
    for row in rows:
        body = row.body[:BODY_IN_EVENT].decode("utf-8", "replace")
        payload = {
            **describe(row),
            "body_sha256": hashlib.sha256(row.body).hexdigest(),
            "body": body,
        }
        events.append(Event("intake.dropped", f"intake:{row.id}", now, actor, payload))
    ids = [row.id for row in rows]
    session.execute(delete(_ROW).where(_ROW.id.in_(ids), _ROW.error.is_not(None)))
    append(session, events)


def describe(row: AlertIntakeRow) -> dict[str, Any]:
    """A row without its body: for listings and for its audit events."""
    return {
        "id": row.id,
        "received_at": row.received_at.isoformat(),
        "source": row.source,
        "actor": row.actor,
        "integration": row.integration,
        "bytes": len(row.body),
        "attempts": row.attempts,
        "error": row.error,
    }
