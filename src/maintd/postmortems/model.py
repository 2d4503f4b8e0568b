"""What a post-mortem and an action item are: states, sections, edits, and how they look outside."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from maintd.store.models import PostmortemActionRow, PostmortemRow


class PostmortemState(StrEnum):
    draft = "draft"
    in_review = "in_review"
    complete = "complete"


# Review is the point of a blameless post-mortem: a draft goes through it; a reviewer may send it back.
TRANSITIONS: dict[PostmortemState, frozenset[PostmortemState]] = {
    PostmortemState.draft: frozenset({PostmortemState.in_review}),
    PostmortemState.in_review: frozenset({PostmortemState.draft, PostmortemState.complete}),
    PostmortemState.complete: frozenset(),
}


class ActionStatus(StrEnum):
    open = "open"
    done = "done"
    cancelled = "cancelled"


# The template's sections, as columns: prose, and the timeline's instants.
TEXT_FIELDS = (
    "title",
    "summary",
    "impact",
    "severity",
    "what_happened",
    "why_it_happened",
    "contributing_factors",
    "lessons_learned",
    "what_went_well",
    "what_could_be_improved",
)
TIME_FIELDS = (
    "alert_triggered_at",
    "response_begun_at",
    "root_cause_identified_at",
    "fix_implemented_at",
    "resolved_at",
)
EDITABLE = TEXT_FIELDS + TIME_FIELDS
REQUIRED_TO_COMPLETE = ("what_happened", "why_it_happened")


class PostmortemError(Exception):
    """A request the post-mortem's state or rules do not allow; the message says why."""


class PostmortemNotFound(PostmortemError, LookupError):
    """No such post-mortem or action item."""


class PostmortemEdit(BaseModel):
    """A partial edit: only the fields given change; ``null`` clears a time (and empties a text)."""

    model_config = ConfigDict(extra="forbid")

    title: str | None = Field(default=None, max_length=500, description="the post-mortem's heading")
    summary: str | None = Field(default=None, max_length=20000, description="a paragraph on what this was")
    impact: str | None = Field(default=None, max_length=20000, description="who or what was affected, how")
    severity: str | None = Field(default=None, max_length=64, description="e.g. 'P1 (critical)'")
    what_happened: str | None = Field(default=None, max_length=20000, description="root cause: what happened")
    why_it_happened: str | None = Field(default=None, max_length=20000, description="root cause: why")
    contributing_factors: str | None = Field(default=None, max_length=20000, description="what made it worse")
    lessons_learned: str | None = Field(default=None, max_length=20000, description="what the team learned")
    what_went_well: str | None = Field(default=None, max_length=20000, description="keep doing")
    what_could_be_improved: str | None = Field(default=None, max_length=20000, description="do better")
    alert_triggered_at: datetime | None = Field(default=None, description="timeline: the first alert")
    response_begun_at: datetime | None = Field(default=None, description="timeline: someone was on it")
    root_cause_identified_at: datetime | None = Field(default=None, description="timeline: the cause known")
    fix_implemented_at: datetime | None = Field(default=None, description="timeline: the fix in place")
    resolved_at: datetime | None = Field(default=None, description="timeline: the incident resolved")


class ActionView(BaseModel):
    id: int
    incident_id: int
    title: str
    owner: str
    due_on: date
    status: str
    created_at: datetime
    created_by: str
    completed_at: datetime | None
    on_time: bool | None


class PostmortemView(BaseModel):
    incident_id: int
    state: str
    title: str
    severity: str
    impact: str
    summary: str
    alert_triggered_at: datetime | None
    response_begun_at: datetime | None
    root_cause_identified_at: datetime | None
    fix_implemented_at: datetime | None
    resolved_at: datetime | None
    duration_seconds: int | None = Field(description="from the first alert to the resolution")
    what_happened: str
    why_it_happened: str
    contributing_factors: str
    lessons_learned: str
    what_went_well: str
    what_could_be_improved: str
    created_at: datetime
    updated_at: datetime
    completed_at: datetime | None
    completed_by: str | None
    actions: list[ActionView]


def duration(row: PostmortemRow) -> timedelta | None:
    if row.alert_triggered_at is None or row.resolved_at is None:
        return None
    return row.resolved_at - row.alert_triggered_at


def action_view(row: PostmortemActionRow) -> ActionView:
    return ActionView.model_validate(row, from_attributes=True)


def postmortem_view(row: PostmortemRow, actions: list[PostmortemActionRow]) -> PostmortemView:
    spent = duration(row)
    values = {name: getattr(row, name) for name in PostmortemView.model_fields if hasattr(row, name)}
    values.pop("actions", None)
    return PostmortemView(
        **values,
        duration_seconds=int(spent.total_seconds()) if spent is not None else None,
        actions=[action_view(a) for a in actions],
    )
