"""Incidents, the alerts under them, and silences: thin routes over maintd.incidents.service.

Roles: viewers read; responders acknowledge, mitigate, resolve, reopen, close,
assign, add notes and manage silences; changing a priority needs a team lead
(it moves the response deadline and can require a post-mortem); closing a
P0/P1 without its post-mortem (``waive_postmortem``) needs a manager.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import Annotated, Any, Self

from fastapi import APIRouter, Depends, HTTPException, Query
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from sqlalchemy.orm import Session

from maintd import views
from maintd.alerts.silences import create_silence, expire_silence
from maintd.api.deps import AppContext, Id, IdFilter, Offset, context, poke, require
from maintd.auth import Principal, Role
from maintd.clock import utc
from maintd.incidents import service
from maintd.incidents.states import IncidentError
from maintd.plan.incidents import IncidentSettings, Matcher, Priority
from maintd.plan.types import Duration
from maintd.store.models import IncidentRow

Ctx = Annotated[AppContext, Depends(context)]
Viewer = Annotated[Principal, Depends(require(Role.viewer))]
Responder = Annotated[Principal, Depends(require(Role.responder))]
TeamLead = Annotated[Principal, Depends(require(Role.team_lead))]

WAIVER_ROLE = Role.manager
STATE_PATTERN = "^(" + "|".join(service.STATE_FILTERS) + ")$"
Responses = dict[int | str, dict[str, Any]]
NOT_FOUND: Responses = {404: {"description": "no such incident"}}
REFUSED: Responses = {**NOT_FOUND, 409: {"description": "the incident's state or rules refuse it"}}


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ActionBody(_Body):
    note: str = Field(default="", max_length=4000, description="why, for the timeline")


class CloseBody(ActionBody):
    waive_postmortem: bool = Field(
        default=False, description="close a P0/P1 without its post-mortem (manager or above); recorded"
    )


class AssignBody(ActionBody):
    assignee: str = Field(min_length=1, max_length=128, description="who owns the incident now")


class NoteBody(_Body):
    note: str = Field(min_length=1, max_length=4000)


class PriorityBody(ActionBody):
    priority: Priority


class SilenceBody(_Body):
    matchers: list[str] = Field(
        min_length=1, description="Alertmanager-style: name=value, name!=value, name=~regex, name!~regex"
    )
    starts_at: datetime | None = Field(default=None, description="default: now")
    ends_at: datetime | None = Field(default=None, description="give this or duration")
    duration: Duration | None = Field(default=None, description="e.g. 2h; give this or ends_at")
    comment: str = Field(min_length=1, max_length=4000, description="why: required")

    @field_validator("matchers")
    @classmethod
    def _parse(cls, value: list[str]) -> list[str]:
        return [str(Matcher.parse(m)) for m in value]

    @model_validator(mode="after")
    def _one_end(self) -> Self:
        if (self.ends_at is None) == (self.duration is None):
            raise ValueError("give exactly one of ends_at and duration")
        return self

    def span(self, now: datetime) -> tuple[datetime, datetime]:
        starts = utc(self.starts_at) if self.starts_at is not None else now
        ends = utc(self.ends_at) if self.ends_at is not None else starts + (self.duration or timedelta())
        return starts, ends


Action = Callable[..., IncidentRow]


def router() -> APIRouter:
    r = APIRouter()

    @r.get("/incidents", tags=["incidents"], summary="Incidents, newest first")
    def list_incidents(
        ctx: Ctx,
        _: Viewer,
        state: Annotated[str | None, Query(pattern=STATE_PATTERN, description="a state, or 'open'")] = None,
        priority: Priority | None = None,
        since: Annotated[datetime | None, Query(description="opened at or after")] = None,
        limit: Annotated[int, Query(ge=1, le=views.MAX_LIMIT)] = 50,
        offset: Offset = 0,
    ) -> list[views.IncidentView]:
        with ctx.store.read() as session:
            rows = service.list_incidents(
                session, state=state, priority=priority, since=since, limit=limit, offset=offset
            )
            return [views.incident_view(row) for row in rows]

    @r.get(
        "/incidents/{incident_id}",
        tags=["incidents"],
        summary="One incident with its alerts, timeline and escalation",
        responses=NOT_FOUND,
    )
    def get_incident(incident_id: Id, ctx: Ctx, _: Viewer) -> views.IncidentDetail:
        with _answers(), ctx.store.read() as session:
            found = service.get_incident(session, incident_id=incident_id)
            return views.incident_detail(found.incident, found.alerts, found.timeline, found.steps)

    for verb, action, summary in (
        ("acknowledge", service.acknowledge, "Acknowledge: someone is on it (meets the response deadline)"),
        ("mitigate", service.mitigate, "Mark mitigated: the impact is contained"),
        ("resolve", service.resolve, "Resolve"),
        ("reopen", service.reopen, "Reopen: back to triggered, with a fresh response deadline"),
    ):
        _state_route(r, verb, action, summary)

    @r.post(
        "/incidents/{incident_id}/close",
        tags=["incidents"],
        summary="Close a resolved incident (P0/P1: after the post-mortem, or waived by a manager)",
        responses={**REFUSED, 403: {"description": "waiving a post-mortem needs a manager"}},
    )
    def close_incident(
        incident_id: Id, ctx: Ctx, who: Responder, body: CloseBody | None = None
    ) -> views.IncidentView:
        body = body or CloseBody()
        if body.waive_postmortem and not who.role.allows(WAIVER_ROLE):
            raise HTTPException(
                403, f"waiving a post-mortem needs the {WAIVER_ROLE} role; token {who.name!r} is {who.role}"
            )
        with _answers(), ctx.store.write() as session:
            row = service.close(
                session,
                incident_id=incident_id,
                actor=who.actor,
                now=ctx.clock.now(),
                settings=_settings(ctx, session),
                note=body.note,
                waive_postmortem=body.waive_postmortem,
            )
            return views.incident_view(row)

    @r.post(
        "/incidents/{incident_id}/assign", tags=["incidents"], summary="Assign to someone", responses=REFUSED
    )
    def assign_incident(incident_id: Id, body: AssignBody, ctx: Ctx, who: Responder) -> views.IncidentView:
        with _answers(), ctx.store.write() as session:
            row = service.assign(
                session,
                incident_id=incident_id,
                assignee=body.assignee,
                actor=who.actor,
                now=ctx.clock.now(),
                note=body.note,
            )
            return views.incident_view(row)

    @r.post(
        "/incidents/{incident_id}/notes",
        tags=["incidents"],
        summary="Add a note to the timeline",
        responses=REFUSED,
    )
    def add_note(incident_id: Id, body: NoteBody, ctx: Ctx, who: Responder) -> views.IncidentView:
        with _answers(), ctx.store.write() as session:
            row = service.add_note(
                session, incident_id=incident_id, note=body.note, actor=who.actor, now=ctx.clock.now()
            )
            return views.incident_view(row)

    @r.post(
        "/incidents/{incident_id}/priority",
        tags=["incidents"],
        summary="Change the priority (moves the response deadline while unacknowledged)",
        responses=REFUSED,
    )
    def change_priority(incident_id: Id, body: PriorityBody, ctx: Ctx, who: TeamLead) -> views.IncidentView:
        with _answers(), ctx.store.write() as session:
            row = service.change_priority(
                session,
                incident_id=incident_id,
                priority=body.priority,
                actor=who.actor,
                now=ctx.clock.now(),
                settings=_settings(ctx, session),
                note=body.note,
            )
            return views.incident_view(row)

    @r.get("/alerts", tags=["alerts"], summary="Alerts, newest first")
    def list_alerts(
        ctx: Ctx,
        _: Viewer,
        status: Annotated[str | None, Query(pattern="^(firing|resolved)$")] = None,
        incident: IdFilter = None,
        fingerprint: str | None = None,
        since: Annotated[datetime | None, Query(description="started at or after")] = None,
        limit: Annotated[int, Query(ge=1, le=views.MAX_LIMIT)] = 50,
        offset: Offset = 0,
    ) -> list[views.AlertView]:
        with ctx.store.read() as session:
            return views.alerts(
                session,
                status=status,
                incident=incident,
                fingerprint=fingerprint,
                since=since,
                limit=limit,
                offset=offset,
            )

    @r.get("/silences", tags=["silences"], summary="Pending and active silences, newest first")
    def list_silences(
        ctx: Ctx,
        _: Viewer,
        include_expired: Annotated[bool, Query(alias="all", description="expired ones too")] = False,
        limit: Annotated[int, Query(ge=1, le=views.MAX_LIMIT)] = 100,
        offset: Offset = 0,
    ) -> list[views.SilenceView]:
        with ctx.store.read() as session:
            return views.silences(
                session, now=ctx.clock.now(), include_expired=include_expired, limit=limit, offset=offset
            )

    @r.post(
        "/silences",
        tags=["silences"],
        status_code=201,
        summary="Silence new alerts matching every matcher, for a while",
        responses={422: {"description": "bad matchers, times or comment"}},
    )
    def add_silence(body: SilenceBody, ctx: Ctx, who: Responder) -> views.SilenceView:
        now = ctx.clock.now()
        starts_at, ends_at = body.span(now)
        try:
            with ctx.store.write() as session:
                row = create_silence(
                    session,
                    matchers=[Matcher.parse(m) for m in body.matchers],
                    starts_at=starts_at,
                    ends_at=ends_at,
                    created_by=who.actor,
                    comment=body.comment,
                    now=now,
                )
                return views.silence_view(row, now)
        except ValueError as exc:
            raise HTTPException(422, str(exc)) from None

    @r.delete(
        "/silences/{silence_id}",
        tags=["silences"],
        summary="Expire a silence now (it stays listed with ?all=true)",
        responses={404: {"description": "no such silence"}},
    )
    def expire(silence_id: Id, ctx: Ctx, who: Responder) -> views.SilenceView:
        now = ctx.clock.now()
        try:
            with ctx.store.write() as session:
                row = expire_silence(session, silence_id, now=now, actor=who.actor)
                return views.silence_view(row, now)
        except LookupError as exc:
            raise HTTPException(404, str(exc)) from None

    return r


def _state_route(r: APIRouter, verb: str, action: Action, summary: str) -> None:
    @r.post(
        f"/incidents/{{incident_id}}/{verb}",
        name=f"{verb}_incident",
        tags=["incidents"],
        summary=summary,
        responses=REFUSED,
    )
    def change_state(
        incident_id: Id, ctx: Ctx, who: Responder, body: ActionBody | None = None
    ) -> views.IncidentView:
        with _answers(), ctx.store.write() as session:
            row = action(
                session,
                incident_id=incident_id,
                actor=who.actor,
                now=ctx.clock.now(),
                settings=_settings(ctx, session),
                note=body.note if body else "",
            )
            view = views.incident_view(row)
        poke(ctx)  # committed: a resolve queued notices, a reopen restarted the escalation
        return view


@contextlib.contextmanager
def _answers() -> Iterator[None]:
    """Domain refusals become problem responses: unknown → 404, not allowed now → 409."""
    try:
        yield
    except service.IncidentNotFound as exc:
        raise HTTPException(404, str(exc)) from None
    except IncidentError as exc:
        raise HTTPException(409, str(exc)) from None


def _settings(ctx: AppContext, session: Session) -> IncidentSettings:
    """The running plan's incident settings, else the stored plan's (an API without a scheduler)."""
    loaded = ctx.engine.loaded if ctx.engine is not None else None
    return loaded.plan.incidents if loaded is not None else service.stored_settings(session)
