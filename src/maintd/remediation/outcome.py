"""What an execution's end means: the row, its events, the playbook's breaker, and the incident.

Success (verified, or nothing to verify) mitigates the incident; it resolves as usual when
its alerts resolve. Failure escalates to a human at once, saying what was tried: the
incident's next pending escalation step is brought forward to now, and an incident an
earlier execution had mitigated goes back to triggered (its policy starts again). Dry runs
touch neither the incident nor the breaker.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import update
from sqlalchemy.orm import Session

from maintd.incidents.escalation import KIND as ESCALATE
from maintd.incidents.states import IncidentError, State, transition
from maintd.plan.playbooks import Playbook
from maintd.remediation.guardrails import State as Row
from maintd.remediation.guardrails import Verdict
from maintd.remediation.intake import ACTOR, decision_event
from maintd.store.events import Event, append
from maintd.store.models import IncidentRow, RemediationBreakerRow, RemediationRow, TimerRow
from maintd.timers import pending

OUTPUT_LIMIT = 4000


@dataclass
class Ended:
    """How an execution went, as the executor saw it."""

    ok: bool
    output: str
    changes: list[dict[str, Any]] = field(default_factory=list)
    verified: str | None = None  # the re-run's status, "skipped", "error", or None (not verified)
    verify_run_id: str | None = None


def refused(session: Session, row_id: int, reason: str, now: datetime) -> None:
    """The action refused before changing anything (a guardrail of its own): suppressed, and why."""
    row = session.get(RemediationRow, row_id)
    if row is None:
        return
    row.state, row.reason, row.finished_at = Row.suppressed.value, reason, now
    append(session, decision_event(row, Verdict.suppressed, now))


def finish(session: Session, row_id: int, ended: Ended, playbook: Playbook | None, now: datetime) -> None:
    """Record the end of an execution and what follows from it (flushes; the caller commits)."""
    row = session.get(RemediationRow, row_id)
    if row is None:
        return
    row.state = (Row.succeeded if ended.ok else Row.failed).value
    row.outcome = "success" if ended.ok else "failure"
    row.output = ended.output[:OUTPUT_LIMIT]
    row.changes = ended.changes
    row.verified, row.verify_run_id = ended.verified, ended.verify_run_id
    row.finished_at = now
    subject = f"incident:{row.incident_id}"
    payload: dict[str, Any] = {
        "remediation": row.id,
        "playbook": row.playbook,
        "action": row.action,
        "target": row.target,
        "outcome": row.outcome,
        "verified": ended.verified,
        "changes": ended.changes,
        "output": ended.output[:1000],
    }
    if row.dry_run:
        append(session, Event("remediation.dry_run", subject, now, ACTOR, payload))
        return
    append(session, Event("remediation.executed", subject, now, ACTOR, payload))
    _count(session, row, ended.ok, playbook, now)
    incident = session.get(IncidentRow, row.incident_id) if row.incident_id is not None else None
    if incident is None:
        return
    if ended.ok:
        _mitigate(session, incident, row, now)
    else:
        _escalate(session, incident, row, ended, now)


def _count(session: Session, row: RemediationRow, ok: bool, playbook: Playbook | None, now: datetime) -> None:
    breaker = session.get(RemediationBreakerRow, row.playbook)
    if breaker is None:
        breaker = RemediationBreakerRow(playbook=row.playbook, failures=0, updated_at=now)
        session.add(breaker)
    breaker.updated_at = now
    if ok:
        breaker.failures = 0
        return
    breaker.failures += 1
    limit = playbook.guardrails.breaker_failures if playbook is not None else 1
    if breaker.failures >= limit and breaker.opened_at is None:
        breaker.opened_at = now
        append(
            session,
            Event(
                "remediation.breaker_opened",
                f"playbook:{row.playbook}",
                now,
                ACTOR,
                {"playbook": row.playbook, "failures": breaker.failures, "last": row.id},
            ),
        )


def _mitigate(session: Session, incident: IncidentRow, row: RemediationRow, now: datetime) -> None:
    if State(incident.state) not in (State.triggered, State.acknowledged):
        return
    try:
        transition(
            session,
            incident,
            State.mitigated,
            actor=ACTOR,
            now=now,
            note=f"playbook {row.playbook} ({row.action} on {row.target}) succeeded; remediation {row.id}",
        )
    except IncidentError:
        return  # moved on meanwhile (resolved, closed): nothing to mitigate


def _escalate(
    session: Session, incident: IncidentRow, row: RemediationRow, ended: Ended, now: datetime
) -> None:
    """A human takes over now: what was tried on the timeline, the next page due now."""
    tried = f"{row.action} on {row.target}: {ended.output.splitlines()[0] if ended.output else 'failed'}"
    paged = None
    if State(incident.state) is State.mitigated:
        transition(
            session,
            incident,
            State.triggered,
            actor=ACTOR,
            now=now,
            note=f"playbook {row.playbook} failed: {tried}",
        )
        paged = "escalation restarted"
    elif State(incident.state) is State.triggered:
        paged = _page_now(session, incident, now)
    note = f"remediation {row.id} failed, a human takes over: playbook {row.playbook} tried {tried}"
    append(session, Event("incident.note", f"incident:{incident.id}", now, ACTOR, {"note": note}))
    append(
        session,
        Event(
            "remediation.escalated",
            f"incident:{incident.id}",
            now,
            ACTOR,
            {
                "remediation": row.id,
                "playbook": row.playbook,
                "tried": tried,
                "verified": ended.verified,
                "changes": ended.changes,
                "paged": paged,
                "reason": "remediation failed: a human takes over",
            },
        ),
    )


def _page_now(session: Session, incident: IncidentRow, now: datetime) -> str | None:
    """Make the incident's next pending escalation step due now; its step key (None: none left)."""
    steps = pending(session, subject=f"incident:{incident.id}", kind=ESCALATE)
    if not steps:
        return None
    first = steps[0]
    if first.due_at > now:
        session.execute(
            update(TimerRow)
            .where(TimerRow.id == first.id, TimerRow.fired_at.is_(None), TimerRow.cancelled_at.is_(None))
            .values(due_at=now)
            .execution_options(synchronize_session=False)
        )
    return first.step
