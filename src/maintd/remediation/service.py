"""What people do with remediations (CLI and API): list, approve, deny, reset a breaker.

Keyword-only functions on the caller's session; they flush, the caller commits. A refusal is
a ``RemediationError`` whose message says why.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.orm import Session

from maintd.remediation.guardrails import State, Verdict
from maintd.remediation.intake import decision_event
from maintd.store.events import Event, append
from maintd.store.models import IncidentRow, RemediationBreakerRow, RemediationRow


class RemediationError(Exception):
    """A request the remediation's state does not allow; the message says why."""


class RemediationNotFound(RemediationError):
    pass


class RemediationView(BaseModel):
    id: int
    playbook: str
    action: str
    incident_id: int | None
    alert_id: int | None
    target: str
    state: str
    reason: str
    dry_run: bool
    created_at: datetime
    decided_by: str | None
    decided_at: datetime | None
    started_at: datetime | None
    finished_at: datetime | None
    outcome: str | None
    verified: str | None
    verify_run_id: str | None
    output: str
    changes: list[dict[str, Any]]
    labels: dict[str, Any]


class BreakerView(BaseModel):
    playbook: str
    failures: int
    opened_at: datetime | None
    updated_at: datetime


def view(row: RemediationRow) -> RemediationView:
    return RemediationView.model_validate(row, from_attributes=True)


def list_remediations(
    session: Session,
    *,
    state: State | None = None,
    playbook: str | None = None,
    incident_id: int | None = None,
    limit: int = 50,
    offset: int = 0,
) -> list[RemediationRow]:
    """Newest first."""
    stmt = select(RemediationRow)
    if state is not None:
        stmt = stmt.where(RemediationRow.state == state.value)
    if playbook is not None:
        stmt = stmt.where(RemediationRow.playbook == playbook)
    if incident_id is not None:
        stmt = stmt.where(RemediationRow.incident_id == incident_id)
    return list(session.scalars(stmt.order_by(RemediationRow.id.desc()).offset(offset).limit(limit)))


def get(session: Session, *, remediation_id: int) -> RemediationRow:
    row = session.get(RemediationRow, remediation_id)
    if row is None:
        raise RemediationNotFound(f"no remediation {remediation_id}")
    return row


def approve(
    session: Session, *, remediation_id: int, actor: str, now: datetime, note: str = ""
) -> RemediationRow:
    """An execution waiting for approval is queued to run (the engine runs it at its next pass)."""
    return _decide(session, remediation_id, State.queued, actor, now, note)


def deny(
    session: Session, *, remediation_id: int, actor: str, now: datetime, note: str = ""
) -> RemediationRow:
    """An execution waiting for approval will not run; the incident's escalation proceeds."""
    return _decide(session, remediation_id, State.denied, actor, now, note)


def _decide(
    session: Session, remediation_id: int, to: State, actor: str, now: datetime, note: str
) -> RemediationRow:
    row = get(session, remediation_id=remediation_id)
    if row.state != State.awaiting_approval.value:
        raise RemediationError(
            f"remediation {row.id} is {row.state}; only one awaiting approval can be decided"
        )
    incident = session.get(IncidentRow, row.incident_id) if row.incident_id is not None else None
    if to is State.queued and incident is not None and incident.state in ("resolved", "closed"):
        raise RemediationError(
            f"incident {incident.id} is {incident.state}: nothing left to remediate (deny it instead)"
        )
    row.state, row.decided_by, row.decided_at = to.value, actor, now
    verb = "approved" if to is State.queued else "denied"
    row.reason = f"{verb} by {actor}" + (f": {note}" if note else "")
    verdict = Verdict.executed if to is State.queued else Verdict.suppressed
    append(session, decision_event(row, verdict, now, actor))
    return row


def breakers(session: Session) -> list[RemediationBreakerRow]:
    return list(session.scalars(select(RemediationBreakerRow).order_by(RemediationBreakerRow.playbook)))


def reset_breaker(session: Session, *, playbook: str, actor: str, now: datetime) -> RemediationBreakerRow:
    """Close a playbook's breaker (its failures in a row back to 0): it may act again."""
    breaker = session.get(RemediationBreakerRow, playbook)
    if breaker is None:
        raise RemediationNotFound(f"playbook {playbook!r} has no breaker: it never failed")
    was = breaker.opened_at
    breaker.failures, breaker.opened_at, breaker.updated_at = 0, None, now
    payload = {"playbook": playbook, "was_open_since": was.isoformat() if was else None}
    append(session, Event("remediation.breaker_reset", f"playbook:{playbook}", now, actor, payload))
    return breaker
