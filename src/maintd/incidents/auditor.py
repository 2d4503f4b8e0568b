"""The escalation auditor: an alert of maintd's own when escalation steps fire late.

A step still pending more than a minute after it was due means pages are not
going out (no maintd process is firing timers, or they cannot keep up). The
auditor then raises ``EscalationOverdue`` through the ordinary pipeline, so it
opens an incident, takes silences and rules like any alert, and shows in the
incident list; it resolves the alert once no step is overdue.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from maintd.alerts.fingerprint import fingerprint
from maintd.alerts.model import AlertIn, AlertStatus, Severity
from maintd.incidents.breach import SOURCE
from maintd.incidents.escalation import KIND
from maintd.incidents.pipeline import ingest
from maintd.plan.incidents import IncidentSettings
from maintd.store.events import SYSTEM
from maintd.store.models import AlertRow, TimerRow
from maintd.timers import overdue

ALERTNAME = "EscalationOverdue"
LABELS = {"alertname": ALERTNAME}
OVERDUE = timedelta(seconds=60)


def overdue_alert(late: list[TimerRow], now: datetime, status: AlertStatus = AlertStatus.firing) -> AlertIn:
    """The one alert about overdue escalation steps; its labels (its identity) never change."""
    summary = "no escalation step is overdue any more"
    if late:
        oldest = late[0]
        behind = round((now - oldest.due_at).total_seconds())
        more = f" (and {len(late) - 1} more)" if len(late) > 1 else ""
        summary = (
            f"escalation step {oldest.step} of {oldest.subject} is {behind} s overdue{more}: "
            "pages are not going out"
        )
    return AlertIn(
        source=SOURCE,
        labels=dict(LABELS),
        annotations={"oldest_due": late[0].due_at.isoformat()} if late else {},
        status=status,
        severity=Severity.critical,
        summary=summary,
    )


def firing(session: Session) -> bool:
    """Whether the overdue alert is firing now."""
    found = session.scalar(
        select(AlertRow.id)
        .where(AlertRow.dedup_key == fingerprint(LABELS), AlertRow.status == AlertStatus.firing.value)
        .limit(1)
    )
    return found is not None


def audit(session: Session, now: datetime, *, settings: IncidentSettings) -> bool:
    """Raise or resolve the overdue alert as the timers say (flushes only); whether it fires after."""
    late = overdue(session, now, by=OVERDUE, kind=KIND)
    was_firing = firing(session)
    if late and not was_firing:
        ingest(session, [overdue_alert(late, now)], now=now, settings=settings, actor=SYSTEM)
    elif not late and was_firing:
        ingest(
            session, [overdue_alert([], now, AlertStatus.resolved)], now=now, settings=settings, actor=SYSTEM
        )
    return bool(late)
