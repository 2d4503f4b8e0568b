"""What a change request is: its states and their transitions, errors, the request, the views."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from maintd.store.models import ChangeRow


class ChangeState(StrEnum):
    draft = "draft"
    pending_approval = "pending_approval"
    approved = "approved"
    executing = "executing"
    watching = "watching"
    rolling_back = "rolling_back"
    completed = "completed"
    rolled_back = "rolled_back"
    failed = "failed"
    rejected = "rejected"
    cancelled = "cancelled"


KIND = "change"  # the timer kind of a change's steps (maintd.timers): execute.N, watch.N.I, rollback.N


def subject(change_id: int) -> str:
    """The event and timer subject of a change."""
    return f"change:{change_id}"


S = ChangeState
# executing -> approved: the snapshot or the pre-check refused before anything changed; it may be
# executed again. failed -> rolling_back: a rollback that failed may be tried again.
TRANSITIONS: dict[ChangeState, frozenset[ChangeState]] = {
    S.draft: frozenset({S.pending_approval, S.approved, S.cancelled}),
    S.pending_approval: frozenset({S.approved, S.rejected, S.cancelled}),
    S.approved: frozenset({S.executing, S.cancelled}),
    S.executing: frozenset({S.approved, S.watching, S.rolling_back}),
    S.watching: frozenset({S.completed, S.rolling_back}),
    S.rolling_back: frozenset({S.rolled_back, S.failed}),
    S.failed: frozenset({S.rolling_back}),
    S.completed: frozenset(),
    S.rolled_back: frozenset(),
    S.rejected: frozenset(),
    S.cancelled: frozenset(),
}
SETTLED = frozenset({S.completed, S.rolled_back, S.failed, S.rejected, S.cancelled})


class ChangeError(Exception):
    """A request the change's state or the plan's rules do not allow; the message says why."""


class ChangeNotFound(ChangeError, LookupError):
    """No such change."""


class ChangeForbidden(ChangeError, PermissionError):
    """The person's role may not do this (approve this type, override a freeze)."""


class ChangeFrozen(ChangeError):
    """Open P0/P1 incidents freeze changes."""


Param = Annotated[str, StringConstraints(max_length=1024)]
TargetName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$")]


class ChangeRequest(BaseModel):
    """What a requester asks for; the plan's change type and procedure say what it needs and runs."""

    model_config = ConfigDict(extra="forbid")

    type: str = Field(
        min_length=1, max_length=63, description="a change type of the plan, e.g. configuration-update"
    )
    title: str = Field(min_length=1, max_length=500, description="one line: what changes")
    description: str = Field(default="", max_length=20000, description="why, and what approvers should know")
    procedure: str = Field(
        min_length=1, max_length=63, description="a procedure of the plan: the commands run"
    )
    params: dict[str, Param] = Field(default={}, description="values of the procedure's {placeholders}")
    targets: list[TargetName] = Field(min_length=1, max_length=500, description="applied in order")
    canary: list[TargetName] = Field(default=[], description="targets (of targets) applied and checked first")
    checks: list[str] | None = Field(default=None, description="tasks to watch; unset: the type's")
    evidence: dict[str, str] = Field(default={}, description="evidence by name: a run id or a link")
    draft: bool = Field(default=False, description="keep it a draft: submit later")


class ApprovalView(BaseModel):
    person: str
    role: str
    decision: str
    note: str
    at: datetime


class EventView(BaseModel):
    at: datetime
    kind: str
    actor: str
    payload: dict[str, Any]


class ChangeView(BaseModel):
    id: int
    type: str
    title: str
    description: str
    procedure: str
    params: dict[str, Any]
    targets: list[str]
    canary: list[str]
    checks: list[str]
    evidence: dict[str, Any]
    state: str
    requested_by: str
    created_at: datetime
    updated_at: datetime
    approved_at: datetime | None
    freeze_override: dict[str, Any] | None
    applied: list[str]
    watch_started_at: datetime | None
    watch_until: datetime | None
    errors: int
    outcome: str | None
    finished_at: datetime | None
    approvals: list[ApprovalView] = []
    missing_approvals: list[str] = Field(default=[], description="e.g. 'manager x1': still needed")
    timeline: list[EventView] = []


def change_view(row: ChangeRow, **extra: Any) -> ChangeView:
    values = {name: getattr(row, name) for name in ChangeView.model_fields if hasattr(row, name)}
    return ChangeView(**{**values, **extra})
