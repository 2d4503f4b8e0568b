"""New firing alerts → playbook decisions, off the alert path.

The alert pipeline writes an ``alert.firing`` event when an alert joins an incident (new,
or no longer muted). Remediation reads those events after a cursor kept in the database,
moved with a conditional update (``... WHERE last_event_id = :seen``), so across several
maintd processes each event is taken once. Ingests run one at a time (an advisory lock on
PostgreSQL, SQLite's single writer), so ``alert.firing`` ids commit in order and the cursor
skips none.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pydantic import ValidationError
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from maintd.plan.playbooks import Playbook
from maintd.remediation.base import Refused, render
from maintd.remediation.guardrails import BUSY, Decision, Past, Situation, State, Verdict, decide
from maintd.remediation.registry import ActionRegistry
from maintd.store.db import dialect_insert, rowcount
from maintd.store.events import Event, append
from maintd.store.models import (
    AlertRow,
    EventRow,
    RemediationBreakerRow,
    RemediationCursorRow,
    RemediationRow,
)

CURSOR = "alerts"
ACTOR = "remediation"
BATCH = 200
STALE = timedelta(hours=1)  # an alert.firing event older than this is not acted on (a backlog after downtime)
UNHEALTHY_SCAN = 10_000  # firing alerts looked at to count unhealthy targets

_STATE_OF = {
    Verdict.executed: State.queued,
    Verdict.needs_approval: State.awaiting_approval,
    Verdict.suppressed: State.suppressed,
}


@dataclass(frozen=True)
class Taken:
    decided: list[int]  # remediation row ids
    queued: int  # of them, to execute now
    more: bool  # a full batch: call again


def take(session: Session, *, playbooks: Sequence[Playbook], actions: ActionRegistry, now: datetime) -> Taken:
    """Decide about the alerts that started firing since the cursor (flushes; the caller commits)."""
    seen = _cursor(session, now)
    rows = session.execute(
        select(EventRow.id, EventRow.subject, EventRow.at)
        .where(EventRow.kind == "alert.firing", EventRow.id > seen)
        .order_by(EventRow.id)
        .limit(BATCH)
    ).all()
    if not rows:
        return Taken([], 0, False)
    moved = session.execute(
        update(RemediationCursorRow)
        .where(RemediationCursorRow.name == CURSOR, RemediationCursorRow.last_event_id == seen)
        .values(last_event_id=rows[-1].id)
        .execution_options(synchronize_session=False)
    )
    if rowcount(moved) != 1:
        return Taken([], 0, False)  # another process took these events
    decided: list[int] = []
    queued = 0
    for row in rows:
        alert = session.get(AlertRow, int(row.subject.removeprefix("alert:")))
        if alert is None or alert.status != "firing" or alert.incident_id is None or now - row.at > STALE:
            continue
        labels = {str(k): str(v) for k, v in alert.labels.items()}
        playbook = next((p for p in playbooks if p.matches(labels)), None)
        if playbook is None:
            if playbooks:
                append(session, _unmatched(alert, labels, now))
            continue
        found = decide_for(session, playbook, actions, alert=alert, labels=labels, now=now)
        decided.append(found.id)
        queued += found.state == State.queued
    return Taken(decided, queued, len(rows) >= BATCH)


def anything_new(session: Session) -> bool:
    """Whether ``take`` has work (a read, so an idle tick costs no write transaction)."""
    seen = session.scalar(
        select(RemediationCursorRow.last_event_id).where(RemediationCursorRow.name == CURSOR)
    )
    if seen is None:
        return True
    newer = select(EventRow.id).where(EventRow.kind == "alert.firing", EventRow.id > seen).limit(1)
    return session.scalar(newer) is not None


def _cursor(session: Session, now: datetime) -> int:
    """Where to read from. The first time, from the first event of the last ``STALE`` (no backlog)."""
    seen = session.scalar(
        select(RemediationCursorRow.last_event_id).where(RemediationCursorRow.name == CURSOR)
    )
    if seen is not None:
        return int(seen)
    first = session.scalar(select(func.min(EventRow.id)).where(EventRow.at >= now - STALE))
    start = (
        int(first) - 1
        if first is not None
        else int(session.scalar(select(func.coalesce(func.max(EventRow.id), 0))) or 0)
    )
    insert = dialect_insert(session)(RemediationCursorRow).values(name=CURSOR, last_event_id=start)
    session.execute(insert.on_conflict_do_nothing())
    return int(
        session.scalar(select(RemediationCursorRow.last_event_id).where(RemediationCursorRow.name == CURSOR))
        or 0
    )


def _unmatched(alert: AlertRow, labels: dict[str, str], now: datetime) -> Event:
    kind = labels.get("alertname", "?")
    return Event(
        "remediation.escalated",
        f"incident:{alert.incident_id}",
        now,
        ACTOR,
        {
            "alert": alert.id,
            "alert_type": kind,
            "reason": f"no playbook for alert type {kind!r}: the incident's escalation proceeds",
        },
    )


def target_key(playbook: Playbook, labels: dict[str, str], fingerprint: str) -> str:
    """The execution's target: the playbook's template, else the target label, else the alert."""
    if playbook.target is not None:
        return str(render(playbook.target, labels))[:255]
    return (labels.get("target") or f"alert:{fingerprint}")[:255]


def decide_for(
    session: Session,
    playbook: Playbook,
    actions: ActionRegistry,
    *,
    alert: AlertRow,
    labels: dict[str, str],
    now: datetime,
) -> RemediationRow:
    """Gather the situation, decide, record the row and its event (flushes only)."""
    kind = actions.get(playbook.action_kind)
    target = f"alert:{alert.fingerprint}"
    try:
        target = target_key(playbook, labels, alert.fingerprint)
        config = kind.config.model_validate(render(playbook.action.params, labels))
        situation = _situation(session, playbook, target, kind.destructive(config), now)
        decision = decide(playbook, situation, now)
    except Refused as exc:
        decision = Decision(Verdict.suppressed, f"refused: {exc}")
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        decision = Decision(
            Verdict.suppressed, f"the action's params are invalid for this alert: {where}: {first['msg']}"
        )
    row = RemediationRow(
        playbook=playbook.name,
        action=kind.name,
        incident_id=alert.incident_id,
        alert_id=alert.id,
        target=target,
        state=_STATE_OF[decision.verdict].value,
        reason=decision.reason,
        dry_run=decision.dry_run,
        labels=labels,
        created_at=now,
        output="",
        changes=[],
    )
    session.add(row)
    session.flush()
    append(session, decision_event(row, decision.verdict, now))
    return row


def decision_event(row: RemediationRow, verdict: Verdict, now: datetime, actor: str = ACTOR) -> Event:
    payload: dict[str, Any] = {
        "remediation": row.id,
        "playbook": row.playbook,
        "action": row.action,
        "target": row.target,
        "decision": verdict.value,
        "reason": row.reason,
        "dry_run": row.dry_run,
        "alert": row.alert_id,
    }
    return Event("remediation.decided", f"incident:{row.incident_id}", now, actor, payload)


def _situation(
    session: Session, playbook: Playbook, target: str, destructive: bool, now: datetime
) -> Situation:
    rails = playbook.guardrails
    since = now - max(rails.window, rails.cooldown)
    recent = [
        Past(t, State(s), at)
        for t, s, at in session.execute(
            select(RemediationRow.target, RemediationRow.state, RemediationRow.created_at)
            .where(RemediationRow.playbook == playbook.name, RemediationRow.created_at >= since)
            .order_by(RemediationRow.created_at.desc(), RemediationRow.id.desc())
        ).all()
    ]
    busy = session.scalar(
        select(RemediationRow.id)
        .where(RemediationRow.target == target, RemediationRow.state.in_([s.value for s in BUSY]))
        .limit(1)
    )
    breaker = session.get(RemediationBreakerRow, playbook.name)
    return Situation(
        target=target,
        destructive=destructive,
        recent=recent,
        busy_targets=frozenset({target}) if busy is not None else frozenset(),
        unhealthy=_unhealthy(session, playbook),
        breaker_opened_at=breaker.opened_at if breaker is not None else None,
        failures=breaker.failures if breaker is not None else 0,
    )


def _unhealthy(session: Session, playbook: Playbook) -> int:
    """Distinct targets with firing alerts this playbook matches."""
    keys = set()
    for labels, fingerprint in session.execute(
        select(AlertRow.labels, AlertRow.fingerprint).where(AlertRow.status == "firing").limit(UNHEALTHY_SCAN)
    ):
        flat = {str(k): str(v) for k, v in labels.items()}
        if playbook.matches(flat):
            try:
                keys.add(target_key(playbook, flat, fingerprint))
            except Refused:
                keys.add(f"alert:{fingerprint}")
    return len(keys)
