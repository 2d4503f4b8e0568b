"""The seed's "patch deployment success rate", from the outcomes of change requests (maintd.changes).

A change that ended in the period counts once: ``change.completed`` is a success,
``change.rolled_back`` and ``change.failed`` are not. Read from the event log, so it
needs nothing of the changes room but its event names.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from maintd.kpi.model import Figure, share
from maintd.store.models import EventRow

COMPLETED, ROLLED_BACK, FAILED = "change.completed", "change.rolled_back", "change.failed"


def change_figures(session: Session, start: datetime, end: datetime) -> list[Figure]:
    ended = Counter(
        session.scalars(
            select(EventRow.kind).where(
                EventRow.kind.in_((COMPLETED, ROLLED_BACK, FAILED)), EventRow.at >= start, EventRow.at < end
            )
        )
    )
    done, back, failed = ended[COMPLETED], ended[ROLLED_BACK], ended[FAILED]
    total = done + back + failed
    return [
        Figure(
            name="seed.patch_deployment_success",
            group="seed",
            title="Patch deployment success rate",
            value=share(done, total),
            unit="%",
            how=(
                f"{done} of {total} changes that ended in the period completed their health watch "
                f"(rolled back: {back}, failed: {failed})"
            ),
            samples=total,
        )
    ]
