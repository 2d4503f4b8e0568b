"""The SLOs of the active plan, as stored by the engine: what the KPIs, the CLI and the API read."""

from __future__ import annotations

import logging
from datetime import datetime

from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from maintd.plan.slos import Slo
from maintd.slo.budget import SloStatus, evaluate
from maintd.store.models import PlanVersionRow

log = logging.getLogger(__name__)


def stored_slos(session: Session, *, until: datetime | None = None) -> list[Slo]:
    """The ``slos`` of the last plan loaded (by ``until``); one that no longer validates is left out."""
    # Only the section: the stored plan can be megabytes (every target and task).
    stmt = select(PlanVersionRow.document["slos"]).order_by(PlanVersionRow.id.desc())
    if until is not None:
        stmt = stmt.where(PlanVersionRow.loaded_at <= until)
    section = session.execute(stmt.limit(1)).scalar()
    out = []
    for item in section if isinstance(section, list) else []:
        try:
            out.append(Slo.model_validate(item))
        except ValidationError as exc:
            log.warning("a stored SLO is left out: %s", str(exc).splitlines()[0])
    return out


def statuses(session: Session, now: datetime, *, name: str | None = None) -> list[SloStatus]:
    return [
        evaluate(session, slo, now) for slo in stored_slos(session, until=now) if name in (None, slo.name)
    ]
