"""What people do with change requests: create, submit, approve, reject, cancel, read.

Keyword-only functions that take the caller's session and only flush; the request or
command owns the transaction. Every transition appends an event ``change.<state>`` on
the change's subject (``change:ID``). Asking for an execution or a rollback is
maintd.changes.orders; those are steps on database timers (kind ``change``) that
maintd.changes.worker runs.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from maintd.auth import Principal, Role
from maintd.changes import matrix
from maintd.changes.commands import CommandError, check_value
from maintd.changes.model import (
    TRANSITIONS,
    ApprovalView,
    ChangeError,
    ChangeForbidden,
    ChangeNotFound,
    ChangeRequest,
    ChangeState,
    ChangeView,
    EventView,
    change_view,
    subject,
)
from maintd.plan.changes import ChangeSettings, ChangeType, EvidenceKind
from maintd.plan.models import Plan
from maintd.store import events
from maintd.store.events import Event, append
from maintd.store.models import ChangeApprovalRow, ChangeRow, RunRow

APPROVE, REJECT = "approve", "reject"


def load(session: Session, change_id: int, *, for_update: bool = False) -> ChangeRow:
    stmt = select(ChangeRow).where(ChangeRow.id == change_id)
    if for_update:
        # Two approvers at once on PostgreSQL take turns (SQLite writers are serialised already).
        stmt = stmt.with_for_update().execution_options(populate_existing=True)
    row = session.scalar(stmt)
    if row is None:
        raise ChangeNotFound(f"no change {change_id}")
    return row


def change_type(settings: ChangeSettings, row: ChangeRow) -> ChangeType:
    try:
        return settings.type(row.type)
    except KeyError:
        raise ChangeError(f"change {row.id}'s type {row.type!r} is no longer in the plan") from None


def move(
    session: Session, row: ChangeRow, to: ChangeState, actor: str, now: datetime, **payload: Any
) -> None:
    """The one way a change's state changes: checked against TRANSITIONS, recorded as an event."""
    current = ChangeState(row.state)
    if to not in TRANSITIONS[current]:
        allowed = ", ".join(sorted(TRANSITIONS[current])) or "nothing: it is final"
        raise ChangeError(f"change {row.id} is {current}; it can go to {allowed}, not {to}")
    row.state = to.value
    row.updated_at = now
    body = {"from": current.value, "to": to.value, "type": row.type, **payload}
    append(session, Event(f"change.{to.value}", subject(row.id), now, actor, body))


def create(
    session: Session, *, request: ChangeRequest, who: Principal, plan: Plan, now: datetime
) -> ChangeRow:
    """A new change request, submitted at once unless ``request.draft``."""
    settings = plan.changes
    try:
        kind = settings.type(request.type)
    except KeyError:
        names = ", ".join(sorted(settings.all_types()))
        raise ChangeError(f"no change type {request.type!r}; the plan's types: {names}") from None
    checks = _validate(request, kind, plan)
    row = ChangeRow(
        type=request.type,
        title=request.title.strip(),
        description=request.description.strip(),
        procedure=request.procedure,
        params=dict(request.params),
        targets=list(request.targets),
        canary=list(request.canary),
        checks=checks,
        evidence=dict(request.evidence),
        state=ChangeState.draft.value,
        requested_by=who.name,
        created_at=now,
        updated_at=now,
        executions=0,
        rollbacks=0,
        applied=[],
        canary_checked=False,
        errors=0,
    )
    session.add(row)
    session.flush()
    payload = {"type": row.type, "title": row.title, "procedure": row.procedure, "targets": row.targets}
    append(session, Event("change.created", subject(row.id), now, who.actor, payload))
    if not request.draft:
        submit(session, change_id=row.id, who=who, settings=settings, now=now)
    return row


def _validate(request: ChangeRequest, kind: ChangeType, plan: Plan) -> list[str]:
    """The request against the plan; the tasks to watch."""
    settings = plan.changes
    try:
        procedure = settings.procedure(request.procedure)
    except KeyError:
        names = ", ".join(p.name for p in settings.procedures) or "none"
        raise ChangeError(f"no procedure {request.procedure!r} in the plan; procedures: {names}") from None
    if kind.procedures is not None and procedure.name not in kind.procedures:
        allowed = ", ".join(kind.procedures) or "none"
        raise ChangeError(f"changes of type {request.type!r} may run only these procedures: {allowed}")
    needed, given = procedure.params, set(request.params)
    if needed - given:
        raise ChangeError(f"procedure {procedure.name!r} needs params: {', '.join(sorted(needed - given))}")
    if given - needed:
        raise ChangeError(f"procedure {procedure.name!r} has no params {', '.join(sorted(given - needed))}")
    try:
        for name, value in request.params.items():
            check_value(name, value)
    except CommandError as exc:
        raise ChangeError(str(exc)) from None
    if len(set(request.targets)) != len(request.targets):
        raise ChangeError("a target is listed twice")
    if stray := sorted(set(request.canary) - set(request.targets)):
        raise ChangeError(f"canary targets must be targets of the change: {', '.join(stray)}")
    known = {e.name for e in kind.evidence}
    if stray := sorted(set(request.evidence) - known):
        raise ChangeError(
            f"type {request.type!r} takes no evidence {', '.join(stray)}; it takes: {sorted(known)}"
        )
    checks = request.checks if request.checks is not None else settings.watch_of(kind).checks
    if not checks:
        raise ChangeError(
            "no checks to watch: name tasks in the request or in the plan's changes.watch.checks"
        )
    tasks = {t.name: t for t in plan.tasks}
    for name in checks:
        if name not in tasks:
            raise ChangeError(f"no task {name!r} in the plan to watch")
        if not plan.targets_of(tasks[name]):
            raise ChangeError(f"task {name!r} selects no targets: there is nothing to watch")
    return list(checks)


def submit(
    session: Session,
    *,
    change_id: int,
    who: Principal,
    settings: ChangeSettings,
    now: datetime,
    evidence: dict[str, str] | None = None,
) -> ChangeRow:
    """Draft → pending approval, with its evidence checked; a type needing no approvals is approved."""
    row = load(session, change_id, for_update=True)
    kind = change_type(settings, row)
    if evidence:
        row.evidence = {**row.evidence, **evidence}
    _check_evidence(session, row, kind)
    if kind.approvals:
        move(session, row, ChangeState.pending_approval, who.actor, now, evidence=row.evidence)
    else:
        move(session, row, ChangeState.approved, who.actor, now, pre_approved=True, evidence=row.evidence)
        row.approved_at = now
    return row


def _check_evidence(session: Session, row: ChangeRow, kind: ChangeType) -> None:
    for needed in kind.evidence:
        value = str(row.evidence.get(needed.name, "")).strip()
        what = f"evidence {needed.name!r} ({needed.description or needed.kind.value})"
        if not value:
            raise ChangeError(f"change {row.id} lacks {what}")
        if needed.kind is EvidenceKind.link:
            if not value.startswith(("https://", "http://")):
                raise ChangeError(f"{what} must be an http(s) link, not {value!r}")
            continue
        run = session.get(RunRow, value)
        if run is None:
            raise ChangeError(f"{what}: no run {value!r}")
        if run.state != "finished" or run.status != "ok":
            raise ChangeError(f"{what}: run {value} of {run.task} is {run.status or run.state}, not ok")


def votes(session: Session, change_id: int) -> list[ChangeApprovalRow]:
    return list(
        session.scalars(
            select(ChangeApprovalRow)
            .where(ChangeApprovalRow.change_id == change_id)
            .order_by(ChangeApprovalRow.id)
        )
    )


def tally(session: Session, row: ChangeRow, kind: ChangeType) -> matrix.Tally:
    found = [matrix.Vote(v.person, Role(v.role)) for v in votes(session, row.id) if v.decision == APPROVE]
    return matrix.tally(kind.approvals, found)


def approve(
    session: Session,
    *,
    change_id: int,
    who: Principal,
    settings: ChangeSettings,
    now: datetime,
    note: str = "",
) -> ChangeRow:
    """Record ``who``'s approval; once the type's approvals are all there, the change is approved."""
    row, kind = _decide(session, change_id, who, settings, now, APPROVE, note)
    counted = tally(session, row, kind)
    if counted.satisfied:
        approvers = sorted({person for _, person in counted.filled})
        move(session, row, ChangeState.approved, who.actor, now, approvers=approvers)
        row.approved_at = now
    return row


def reject(
    session: Session,
    *,
    change_id: int,
    who: Principal,
    settings: ChangeSettings,
    now: datetime,
    note: str = "",
) -> ChangeRow:
    """Record ``who``'s rejection: the change is rejected (final)."""
    row, _ = _decide(session, change_id, who, settings, now, REJECT, note)
    move(session, row, ChangeState.rejected, who.actor, now, note=note.strip())
    return row


def _decide(
    session: Session,
    change_id: int,
    who: Principal,
    settings: ChangeSettings,
    now: datetime,
    decision: str,
    note: str,
) -> tuple[ChangeRow, ChangeType]:
    row = load(session, change_id, for_update=True)
    if row.state != ChangeState.pending_approval.value:
        raise ChangeError(
            f"change {change_id} is {row.state}; only a change pending approval can be {decision}d"
        )
    kind = change_type(settings, row)
    if who.name == row.requested_by:
        raise ChangeForbidden(f"{who.name} requested change {change_id}; the requester cannot {decision} it")
    if not matrix.may_approve(kind.approvals, who.role):
        needed = ", ".join(sorted({a.role for a in kind.approvals}))
        raise ChangeForbidden(f"a {row.type} change is approved by {needed}; {who.name} is {who.role.value}")
    if any(v.person == who.name for v in votes(session, change_id)):
        raise ChangeError(f"{who.name} has decided on change {change_id} already; a person counts once")
    session.add(
        ChangeApprovalRow(
            change_id=row.id,
            person=who.name,
            role=who.role.value,
            decision=decision,
            note=note.strip(),
            at=now,
        )
    )
    session.flush()
    kind_name = "change.approval" if decision == APPROVE else "change.rejection"
    append(
        session,
        Event(kind_name, subject(row.id), now, who.actor, {"role": who.role.value, "note": note.strip()}),
    )
    return row, kind


def cancel(session: Session, *, change_id: int, who: Principal, now: datetime, note: str = "") -> ChangeRow:
    """Withdraw a change that has not started: its requester, or a team lead or above."""
    row = load(session, change_id, for_update=True)
    if who.name != row.requested_by and not who.role.allows(Role.team_lead):
        raise ChangeForbidden(f"only {row.requested_by} or a team lead may cancel change {change_id}")
    move(session, row, ChangeState.cancelled, who.actor, now, note=note.strip())
    row.finished_at = now
    return row


def get(session: Session, *, change_id: int, settings: ChangeSettings | None = None) -> ChangeView:
    """The change with its decisions, what approvals it still needs, and its timeline."""
    row = load(session, change_id)
    decisions = votes(session, change_id)
    missing: list[str] = []
    if settings is not None and row.state in (ChangeState.draft.value, ChangeState.pending_approval.value):
        kind = settings.all_types().get(row.type)
        if kind is not None:
            missing = tally(session, row, kind).describe_missing()
    timeline = events.query(session, subject=subject(change_id), limit=1000)
    return change_view(
        row,
        approvals=[
            ApprovalView(person=v.person, role=v.role, decision=v.decision, note=v.note, at=v.at)
            for v in decisions
        ],
        missing_approvals=missing,
        timeline=[EventView(at=e.at, kind=e.kind, actor=e.actor, payload=e.payload or {}) for e in timeline],
    )


def list_changes(
    session: Session, *, state: ChangeState | None = None, limit: int = 50, offset: int = 0
) -> list[ChangeRow]:
    """Newest first."""
    stmt = select(ChangeRow)
    if state is not None:
        stmt = stmt.where(ChangeRow.state == state.value)
    return list(session.scalars(stmt.order_by(ChangeRow.id.desc()).offset(offset).limit(limit)))
