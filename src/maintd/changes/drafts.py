"""Draft change requests asked for by a task (unused-resources cleanup, security policies, scanner
pins), through the same service a person's request goes through. One draft per title, ever: a
task run again with the same findings drafts nothing new."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from maintd.auth import Principal, Role
from maintd.changes import service
from maintd.changes.model import ChangeRequest, ChangeState
from maintd.plan.models import Plan
from maintd.store.models import ChangeRow


@dataclass(frozen=True)
class TaskRequester(Principal):
    """The requester of a task's drafts: not a person, so it never approves anything."""

    @property
    def actor(self) -> str:
        return f"system:{self.name}"


@dataclass(frozen=True)
class Drafted:
    change_id: int
    state: str
    new: bool  # False: a change of that title existed already (whatever became of it)


def draft_change(
    session: Session, *, plan: Plan, request: ChangeRequest, requester: str, now: datetime
) -> Drafted:
    """The change of ``request.title``, drafted now unless one exists. Raises ChangeError when the
    plan refuses the request (no such procedure or type, a missing param). Flushes only."""
    found = session.scalars(
        select(ChangeRow).where(ChangeRow.title == request.title.strip()).limit(1)
    ).first()
    if found is not None:
        return Drafted(found.id, found.state, new=False)
    draft = request.model_copy(update={"draft": True})
    row = service.create(
        session, request=draft, who=TaskRequester(requester, Role.responder), plan=plan, now=now
    )
    return Drafted(row.id, ChangeState.draft.value, new=True)
