"""The pipeline's last stage: an alert's resolution or acknowledgement carried to its incident.

Apart from ``maintd.incidents.pipeline`` (which runs it) by job: it changes incidents, not alerts.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.orm import Session

from maintd.alerts.model import AlertStatus
from maintd.incidents.breach import breach_alert
from maintd.incidents.states import OPEN, State, transition
from maintd.plan.incidents import IncidentSettings
from maintd.store.events import append
from maintd.store.models import AlertRow, IncidentRow

if TYPE_CHECKING:
    from maintd.incidents.pipeline import Delivery


def follow_up(session: Session, d: Delivery) -> bool:
    """An alert's resolution or acknowledgement carried to its incident."""
    row = d.row
    if row is None or row.incident_id is None or d.new:
        return True
    incident = session.get(IncidentRow, row.incident_id)
    if incident is None:
        return True
    d.incident = incident
    answered = False
    if d.outcome == "acknowledged" and incident.state == State.triggered.value:
        answered = True
        transition(
            session,
            incident,
            State.acknowledged,
            actor=d.actor,
            now=d.now,
            note=f"alert {row.id} acknowledged by its sender",
            events=d.events,
        )
    elif d.outcome == "resolved" and State(incident.state) in OPEN:
        still_firing = session.scalar(
            select(AlertRow.id)
            .where(AlertRow.incident_id == incident.id, AlertRow.status == AlertStatus.firing.value)
            .limit(1)
        )
        if still_firing is None:
            answered = True
            transition(
                session,
                incident,
                State.resolved,
                actor=d.actor,
                now=d.now,
                note="all its alerts resolved",
                events=d.events,
            )
    if answered and incident.breached_at is not None:
        # Keep the log in order: this delivery's events before those of settling the breach alert.
        append(session, d.events)
        d.events.clear()
        settle_breach(session, incident, now=d.now, settings=d.settings, actor=d.actor)
    return True


def settle_breach(
    session: Session, incident: IncidentRow, *, now: datetime, settings: IncidentSettings, actor: str
) -> None:
    """Resolve ``incident``'s breach alert, if one is firing, now that someone answered it."""
    if incident.breached_at is None:
        return
    alert = breach_alert(incident, AlertStatus.resolved)
    firing = session.scalar(
        select(AlertRow.id)
        .where(AlertRow.dedup_key == alert.identity, AlertRow.status == AlertStatus.firing.value)
        .limit(1)
    )
    if firing is not None:
        from maintd.incidents.pipeline import ingest  # the pipeline imports this module

        ingest(session, [alert], now=now, settings=settings, actor=actor)
