"""A P0/P1 incident that resolves gets its post-mortem draft, pre-filled from its timeline and alerts.

``follow_transition`` runs inside ``maintd.incidents.states.transition`` (which names
it in ``FOLLOWERS`` and imports it when first needed, so the incidents room never
imports this one): the draft is written in the same transaction as the resolution.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from maintd.postmortems.model import PostmortemState
from maintd.store.events import Event, append
from maintd.store.models import AlertRow, IncidentRow, PostmortemRow

DRAFT_PRIORITIES = ("P0", "P1")
RESOLVED = "resolved"
_IMPACT_ALERTS = 10  # alert summaries listed in the impact; the rest are counted


def follow_transition(
    session: Session,
    incident: IncidentRow,
    *,
    was: str,
    to: str,
    actor: str,
    now: datetime,
    events: list[Event] | None,
) -> None:
    """On resolving a P0/P1: draft its post-mortem, or bring a draft's resolution time up to date."""
    if to != RESOLVED or incident.priority not in DRAFT_PRIORITIES:
        return
    found = session.scalar(select(PostmortemRow).where(PostmortemRow.incident_id == incident.id))
    if found is not None:
        # Resolved again after a reopening: the draft's timeline ends at the last resolution.
        if found.state == PostmortemState.draft.value and incident.resolved_at != found.resolved_at:
            found.resolved_at = incident.resolved_at
            found.updated_at = now
        return
    draft(session, incident, actor=actor, now=now, events=events)


def draft(
    session: Session, incident: IncidentRow, *, actor: str, now: datetime, events: list[Event] | None = None
) -> PostmortemRow:
    """Write ``incident``'s post-mortem draft (flushes); the caller made sure it has none."""
    alerts = list(
        session.scalars(select(AlertRow).where(AlertRow.incident_id == incident.id).order_by(AlertRow.id))
    )
    row = PostmortemRow(
        incident_id=incident.id,
        state=PostmortemState.draft.value,
        title=incident.title,
        severity=severity(incident, alerts),
        impact=impact(alerts),
        summary="",
        alert_triggered_at=incident.opened_at,
        response_begun_at=incident.acknowledged_at,
        root_cause_identified_at=None,  # no state marks it: the authors know
        fix_implemented_at=incident.mitigated_at,
        resolved_at=incident.resolved_at,
        what_happened="",
        why_it_happened="",
        contributing_factors="",
        lessons_learned="",
        what_went_well="",
        what_could_be_improved="",
        created_at=now,
        updated_at=now,
    )
    session.add(row)
    session.flush()
    event = Event(
        "postmortem.drafted",
        f"incident:{incident.id}",
        now,
        actor,
        {"priority": incident.priority, "alerts": len(alerts)},
    )
    if events is None:
        append(session, event)
    else:
        events.append(event)
    return row


def severity(incident: IncidentRow, alerts: list[AlertRow]) -> str:
    """``P1 (critical)``: the priority and the worst alert severities seen."""
    seen = sorted({a.severity for a in alerts})
    return f"{incident.priority} ({', '.join(seen)})" if seen else incident.priority


def impact(alerts: list[AlertRow]) -> str:
    """What the alerts said, one line each, with the targets they named; the authors refine it."""
    if not alerts:
        return ""
    targets = Counter(str(a.labels.get("target")) for a in alerts if a.labels.get("target"))
    lines = [f"{len(alerts)} alert{'s' if len(alerts) != 1 else ''}"]
    if targets:
        lines[0] += " on " + ", ".join(sorted(targets))
    lines[0] += ":"
    lines += [f"- {a.summary}" for a in alerts[:_IMPACT_ALERTS]]
    if len(alerts) > _IMPACT_ALERTS:
        lines.append(f"- and {len(alerts) - _IMPACT_ALERTS} more")
    return "\n".join(lines)
