"""Response deadlines: an incident still triggered at its ``ack_deadline`` is breached, once.

A breach is claimed with a conditional update (``... WHERE id = :id AND
breached_at IS NULL``), so with several maintd processes on one database each
breach is recorded, and alerted on, exactly once. The breach appends
``incident.deadline_breached`` and raises an alert of its own
(``IncidentAckDeadlineBreached``) through the ordinary pipeline, so silences,
priorities and grouping apply to it like to any alert. The alert resolves when
the incident is answered (acknowledged, mitigated or resolved).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from maintd.incidents.breach import ALERTNAME, SOURCE, breach_alert
from maintd.incidents.pipeline import ingest
from maintd.incidents.states import State, subject
from maintd.plan.incidents import IncidentSettings, Priority
from maintd.plan.types import format_duration
from maintd.store.db import rowcount
from maintd.store.events import SYSTEM, Event, append
from maintd.store.models import AlertRow, IncidentRow

BATCH = 100  # breaches per call; the rest wait for the next tick
# Built once: building a statement and its cache key, and the ORM's execution, cost more than
# running it (a tick reads it after each alert under a burst).
_INCIDENTS = IncidentRow.__table__.c
_NEXT_BREACH = select(func.min(_INCIDENTS.ack_deadline)).where(
    _INCIDENTS.state == State.triggered.value, _INCIDENTS.breached_at.is_(None)
)


@dataclass(frozen=True)
class Breach:
    incident_id: int
    priority: Priority
    ack_deadline: datetime
    alert_id: int | None  # the breach alert (None when the incident is itself about a breach)
    alert_incident_id: int | None  # where that alert went (None when a silence muted it)


def next_breach_at(session: Session) -> datetime | None:
    """The earliest deadline of a triggered, unbreached incident (the scheduler loop's cheap check)."""
    # Every tick reads it: built once, run on the session's connection (see ``_NEXT_BREACH``).
    found: datetime | None = session.connection().scalar(_NEXT_BREACH)
    return found


def due(session: Session, now: datetime, *, limit: int = BATCH) -> list[int]:
    """Ids of the incidents whose deadline has passed unanswered, earliest deadline first."""
    return list(
        session.scalars(
            select(IncidentRow.id)
            .where(
                IncidentRow.state == State.triggered.value,
                IncidentRow.breached_at.is_(None),
                IncidentRow.ack_deadline <= now,
            )
            .order_by(IncidentRow.ack_deadline, IncidentRow.id)
            .limit(limit)
        )
    )


def claim(
    session: Session, incident_ids: list[int], now: datetime, settings: IncidentSettings
) -> list[Breach]:
    """Record the breach of each incident no other process has recorded yet (flushes only)."""
    breaches = []
    for incident_id in incident_ids:
        # The conditions are checked again in the UPDATE itself: the list may be stale (another
        # process breached it, or someone acknowledged it, since it was read). One row changed
        # means this process owns the breach; PostgreSQL makes a concurrent second UPDATE wait
        # for the first to commit and then re-check its WHERE, so it changes nothing.
        won = session.execute(
            update(IncidentRow)
            .where(
                IncidentRow.id == incident_id,
                IncidentRow.breached_at.is_(None),
                IncidentRow.state == State.triggered.value,
                IncidentRow.ack_deadline <= now,
            )
            .values(breached_at=now)
            .execution_options(synchronize_session=False)
        )
        if rowcount(won) != 1:
            continue
        incident = session.get(IncidentRow, incident_id, populate_existing=True)
        assert incident is not None  # just updated in this transaction
        breaches.append(_record(session, incident, now, settings))
    return breaches


def breach_due(session: Session, now: datetime, settings: IncidentSettings) -> list[Breach]:
    """Breach every incident due at ``now`` (up to BATCH); the caller commits."""
    return claim(session, due(session, now), now, settings)


def _record(session: Session, incident: IncidentRow, now: datetime, settings: IncidentSettings) -> Breach:
    priority = Priority(incident.priority)
    payload: dict[str, object] = {
        "priority": priority.value,
        "ack_deadline": incident.ack_deadline.isoformat(),
        "allowed": format_duration(settings.deadlines[priority]),
        "late_seconds": round((now - incident.ack_deadline).total_seconds()),
    }
    alert_id = alert_incident_id = None
    if _is_about_a_breach(session, incident.id):
        # Alerting on the breach of a breach incident would chain a new incident every deadline.
        payload["alert"] = None
    else:
        # The breach alert must not join the incident it is about. Under the default group_by
        # its alertname already differs, but a plan may group by labels both lack (both would
        # key on "service=", say): grouping also by its ``incident`` label keeps it apart always.
        group_by = [*settings.group_by, *(n for n in ("alertname", "incident") if n not in settings.group_by)]
        apart = settings.model_copy(update={"group_by": group_by})
        (delivery,) = ingest(session, [breach_alert(incident)], now=now, settings=apart, actor=SYSTEM)
        alert_id = delivery.row.id if delivery.row is not None else None
        alert_incident_id = delivery.incident.id if delivery.incident is not None else None
        payload["alert"] = alert_id
        payload["alert_incident"] = alert_incident_id
    append(session, Event("incident.deadline_breached", subject(incident.id), now, SYSTEM, payload))
    return Breach(incident.id, priority, incident.ack_deadline, alert_id, alert_incident_id)


def _is_about_a_breach(session: Session, incident_id: int) -> bool:
    labels = session.scalars(
        select(AlertRow.labels).where(AlertRow.incident_id == incident_id, AlertRow.source == SOURCE)
    )
    return any(lbl.get("alertname") == ALERTNAME for lbl in labels)
