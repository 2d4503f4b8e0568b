"""Incident figures: how many, how fast they were acknowledged and resolved, deadlines kept.

An incident counts in the period it was opened in. MTTA is opened → first acknowledgement, MTTR
opened → resolved (a reopened incident counts to its last resolution); both by priority, as the
mean, the median and the 90th percentile (nearest rank).
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from maintd.kpi.model import Figure, mean, nearest_rank, share
from maintd.store.models import IncidentRow

PRIORITIES = ("P0", "P1", "P2", "P3")


def incident_figures(session: Session, start: datetime, end: datetime) -> list[Figure]:
    rows = session.execute(
        select(
            IncidentRow.priority,
            IncidentRow.opened_at,
            IncidentRow.acknowledged_at,
            IncidentRow.resolved_at,
            IncidentRow.breached_at,
        ).where(IncidentRow.opened_at >= start, IncidentRow.opened_at < end)
    ).all()
    days = (end - start).total_seconds() / 86400
    figures = [
        Figure(
            name="incidents.per_day",
            group="incidents",
            title="Incidents per day",
            value=round(len(rows) / days, 3) if days > 0 else None,
            unit="per day",
            how=f"{len(rows)} incidents opened in {days:g} days",
            samples=len(rows),
        )
    ]
    breached = sum(1 for r in rows if r.breached_at is not None)
    figures.append(
        Figure(
            name="incidents.deadlines_met",
            group="incidents",
            title="Acknowledged within the response deadline",
            value=share(len(rows) - breached, len(rows)),
            unit="%",
            how=f"{len(rows) - breached} of {len(rows)} incidents acknowledged before their deadline",
            samples=len(rows),
            target=100.0,
            better="higher",
        )
    )
    by_priority: dict[str, list[tuple[datetime, datetime | None, datetime | None]]] = defaultdict(list)
    for r in rows:
        by_priority[r.priority].append((r.opened_at, r.acknowledged_at, r.resolved_at))
    for priority in PRIORITIES:
        found = by_priority.get(priority, [])
        figures.append(
            Figure(
                name=f"incidents.count.{priority}",
                group="incidents",
                title=f"{priority} incidents",
                value=float(len(found)),
                unit="count",
                how=f"{len(found)} {priority} incidents opened in the period",
                samples=len(found),
            )
        )
        acked = [(a - o).total_seconds() for o, a, _ in found if a is not None]
        resolved = [(r - o).total_seconds() for o, _, r in found if r is not None]
        figures += _durations("mtta", "acknowledge", priority, acked, len(found))
        figures += _durations("mttr", "resolve", priority, resolved, len(found))
    return figures


def _durations(key: str, verb: str, priority: str, seconds: list[float], opened: int) -> list[Figure]:
    basis = f"{len(seconds)} of {opened} {priority} incidents opened in the period were {verb}d"
    return [
        Figure(
            name=f"incidents.{key}.{priority}",
            group="incidents",
            title=f"Mean time to {verb} ({priority})",
            value=mean(seconds),
            unit="s",
            how=f"mean over {basis}",
            samples=len(seconds),
        ),
        Figure(
            name=f"incidents.{key}_p50.{priority}",
            group="incidents",
            title=f"Median time to {verb} ({priority})",
            value=nearest_rank(seconds, 0.5),
            unit="s",
            how=f"nearest-rank median over {basis}",
            samples=len(seconds),
        ),
        Figure(
            name=f"incidents.{key}_p90.{priority}",
            group="incidents",
            title=f"90th percentile time to {verb} ({priority})",
            value=nearest_rank(seconds, 0.9),
            unit="s",
            how=f"nearest-rank 90th percentile over {basis}",
            samples=len(seconds),
        ),
    ]
