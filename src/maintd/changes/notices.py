"""Telling the requester and the approvers how a change went, through the notification outbox."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from maintd.changes.model import subject
from maintd.notify.message import Message
from maintd.notify.outbox import Recipient, enqueue
from maintd.plan.oncall import Person
from maintd.store.models import ChangeApprovalRow, ChangeRow


def people_to_tell(row: ChangeRow, decisions: list[ChangeApprovalRow]) -> list[str]:
    """The requester, then who approved, each once."""
    names = [row.requested_by] + [d.person for d in decisions if d.decision == "approve"]
    return list(dict.fromkeys(names))


def tell(
    session: Session,
    row: ChangeRow,
    decisions: list[ChangeApprovalRow],
    *,
    state: str,
    step: str,
    people: list[Person],
    now: datetime,
    base_url: str = "",
) -> int:
    """Queue one notice of ``state`` (completed, rolled_back, failed, refused) per person, once per step
    however often this runs; how many were queued."""
    by_name = {p.name: p for p in people}
    message = Message(
        title=f"change {row.id}: {row.title}",
        summary=f"Change {row.id} ({row.type}, {row.procedure} on {', '.join(row.targets)}) is "
        f"{state.replace('_', ' ')}" + (f": {row.outcome}" if row.outcome else "."),
        state=state,
        url=f"{base_url.rstrip('/')}/api/v1/changes/{row.id}" if base_url else None,
        details=[f"Requested by {row.requested_by}; details: maintd change show {row.id}"],
    )
    queued = 0
    for name in people_to_tell(row, decisions):
        person = by_name.get(name)
        recipient = Recipient(f"person:{name}", list(person.notify) if person else [])
        queued += enqueue(
            session,
            subject=subject(row.id),
            incident_id=None,
            recipient=recipient,
            state=state,
            step=step,
            message=message,
            now=now,
        )
    return queued
