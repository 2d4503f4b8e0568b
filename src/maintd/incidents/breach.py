"""The alert maintd raises about an incident whose response deadline passed."""

from __future__ import annotations

from maintd.alerts.model import AlertIn, AlertStatus, Severity
from maintd.plan.incidents import Priority
from maintd.store.models import IncidentRow

SOURCE = "maintd"  # alerts maintd raises about itself
ALERTNAME = "IncidentAckDeadlineBreached"


def breach_alert(incident: IncidentRow, status: AlertStatus = AlertStatus.firing) -> AlertIn:
    """The alert about ``incident``'s missed deadline; its labels are its identity."""
    priority = Priority(incident.priority)
    return AlertIn(
        source=SOURCE,
        labels={"alertname": ALERTNAME, "incident": str(incident.id), "priority": priority.value},
        annotations={"incident_title": incident.title, "ack_deadline": incident.ack_deadline.isoformat()},
        status=status,
        severity=Severity.critical,
        summary=f"incident {incident.id} ({priority}) was not acknowledged in time: {incident.title}",
    )
