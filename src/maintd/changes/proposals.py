"""Patch updates a security scan proposes, as draft change requests.

The ``security-scan`` action reports each vulnerable pin a patch release fixes as a
``propose-update`` change in its run's ``action.applied`` event. With
``changes.security_updates`` in the plan, each becomes a draft change (the configured
type and procedure, the proposal's package, from, to and file as params), requested by
``security-scan``. A draft still needs its evidence (a staging validation run) and its
approvals: a person submits it. One draft per proposal, ever: its title names the
package, both versions, the file and the target, and a title drafted before (whatever
became of that change) is not drafted again.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from maintd.auth import Principal, Role
from maintd.changes import service
from maintd.changes.model import ChangeError, ChangeRequest
from maintd.plan.changes import PROPOSAL_PARAMS
from maintd.plan.models import Plan
from maintd.store import events
from maintd.store.events import Event, append
from maintd.store.models import ChangeRow, EventRow

log = logging.getLogger(__name__)

LOOKBACK = timedelta(days=7)  # at start, proposals this recent are drafted if they were not yet
BATCH = 500


@dataclass(frozen=True)
class Scanner(Principal):
    """The requester of drafted changes: not a person, so it never approves anything."""

    @property
    def actor(self) -> str:
        return f"system:{self.name}"


SCANNER = Scanner("security-scan", Role.responder)


def draft_proposals(
    session: Session, *, plan: Plan, after_id: int | None, now: datetime
) -> tuple[list[int], int]:
    """Draft changes for the proposals in ``action.applied`` events after ``after_id`` (None: the
    last LOOKBACK); the drafts' ids and the last event id read. Flushes only."""
    wanted = plan.changes.security_updates
    since = now - LOOKBACK if after_id is None else None
    cursor = after_id or 0
    drafted: list[int] = []
    while True:
        batch = events.query(session, after_id=cursor, kind="action.applied", since=since, limit=BATCH)
        for event in batch:
            cursor = event.id
            if wanted is None:
                continue
            payload = event.payload or {}
            for proposal in payload.get("changes", []):
                if proposal.get("action") == "propose-update":
                    found = _draft(session, plan, event.subject, payload, proposal.get("detail") or {}, now)
                    drafted += [found] if found is not None else []
        if len(batch) < BATCH:
            if after_id is None and not cursor:  # nothing recent: start from the newest event
                cursor = session.scalar(select(func.max(EventRow.id))) or 0
            return drafted, cursor


def _draft(
    session: Session, plan: Plan, subject: str, run: dict[str, Any], detail: dict[str, Any], now: datetime
) -> int | None:
    wanted = plan.changes.security_updates
    assert wanted is not None
    if not all(str(detail.get(k, "")).strip() for k in PROPOSAL_PARAMS):
        return None
    scanned = subject.partition("/")[2] or subject
    versions = f"{detail['package']} {detail['from']} -> {detail['to']}"
    title = f"update {versions} in {detail['file']} on {scanned}"[:500]
    if session.scalar(select(ChangeRow.id).where(ChangeRow.title == title).limit(1)) is not None:
        return None
    procedure = plan.changes.procedure(wanted.procedure)
    fixes = ", ".join(detail.get("fixes") or []) or "known vulnerabilities"
    request = ChangeRequest(
        type=wanted.type,
        title=title,
        description=f"Proposed by the security scan {subject} (run {run.get('run_id')}): fixes {fixes}.",
        procedure=wanted.procedure,
        params={k: str(detail[k]) for k in procedure.params},
        targets=wanted.targets or [scanned],
        checks=wanted.checks,
        draft=True,
    )
    try:
        with session.begin_nested():
            row = service.create(session, request=request, who=SCANNER, plan=plan, now=now)
    except ChangeError as exc:
        log.warning("the proposal %r was not drafted: %s", title, exc)
        why = {"title": title, "why": str(exc)}
        append(session, Event("change.proposal_refused", subject, now, SCANNER.actor, why))
        return None
    return row.id
