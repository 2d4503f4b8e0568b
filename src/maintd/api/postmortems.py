"""Post-mortems and their action items: thin routes over maintd.postmortems.

Roles: viewers read; responders draft on demand, edit, ask for a review and manage
action items; completing a post-mortem (the review's sign-off, which lets a P0/P1
incident close) or sending it back to draft needs a team lead.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from datetime import date, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query
from fastapi.responses import PlainTextResponse
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session

from maintd import views
from maintd.api.deps import AppContext, Id, Offset, context, require
from maintd.auth import Principal, Role
from maintd.plan.postmortems import PostmortemSettings
from maintd.postmortems import actions, planned, render, service
from maintd.postmortems.model import (
    ActionStatus,
    ActionView,
    PostmortemEdit,
    PostmortemError,
    PostmortemNotFound,
    PostmortemState,
    PostmortemView,
    action_view,
)
from maintd.postmortems.moves import MOVES
from maintd.store.models import PostmortemRow

Ctx = Annotated[AppContext, Depends(context)]
Viewer = Annotated[Principal, Depends(require(Role.viewer))]
Responder = Annotated[Principal, Depends(require(Role.responder))]
TeamLead = Annotated[Principal, Depends(require(Role.team_lead))]

Responses = dict[int | str, dict[str, Any]]
NOT_FOUND: Responses = {404: {"description": "no such incident, post-mortem or action item"}}
REFUSED: Responses = {**NOT_FOUND, 409: {"description": "the post-mortem's state or rules refuse it"}}


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class NoteBody(_Body):
    note: str = Field(default="", max_length=4000, description="why, for the timeline")


class ActionBody(_Body):
    title: str = Field(min_length=1, max_length=500, description="what is to be done")
    owner: str = Field(min_length=1, max_length=63, description="a person of the active plan")
    due_on: date = Field(description="due by the end of this day (UTC)")


class ActionChange(_Body):
    title: str | None = Field(default=None, min_length=1, max_length=500)
    owner: str | None = Field(default=None, min_length=1, max_length=63)
    due_on: date | None = None
    status: ActionStatus | None = Field(default=None, description="done or cancelled: final")


class PostmortemBrief(BaseModel):
    incident_id: int
    state: str
    title: str
    severity: str
    created_at: datetime
    completed_at: datetime | None


def router() -> APIRouter:
    r = APIRouter(tags=["postmortems"])

    @r.get("/postmortems", summary="Post-mortems, newest first")
    def list_postmortems(
        ctx: Ctx,
        _: Viewer,
        state: PostmortemState | None = None,
        limit: Annotated[int, Query(ge=1, le=views.MAX_LIMIT)] = 50,
        offset: Offset = 0,
    ) -> list[PostmortemBrief]:
        with ctx.store.read() as session:
            return [
                _brief(row)
                for row in service.list_postmortems(session, state=state, limit=limit, offset=offset)
            ]

    @r.get("/postmortem-actions", summary="Action items of every post-mortem, earliest due first")
    def list_actions(
        ctx: Ctx,
        _: Viewer,
        status: ActionStatus | None = None,
        owner: str | None = None,
        limit: Annotated[int, Query(ge=1, le=views.MAX_LIMIT)] = 100,
        offset: Offset = 0,
    ) -> list[ActionView]:
        with ctx.store.read() as session:
            rows = actions.list_actions(session, status=status, owner=owner, limit=limit, offset=offset)
            return [action_view(a) for a in rows]

    @r.post(
        "/postmortems/{incident_id}",
        status_code=201,
        summary="Draft a post-mortem for a resolved incident that has none (P0/P1 get one on resolving)",
        responses=REFUSED,
    )
    def create(incident_id: Id, ctx: Ctx, who: Responder) -> PostmortemView:
        with _answers(), ctx.store.write() as session:
            service.create(session, incident_id=incident_id, actor=who.actor, now=ctx.clock.now())
            return service.get_postmortem(session, incident_id=incident_id)

    @r.get("/postmortems/{incident_id}", summary="An incident's post-mortem", responses=NOT_FOUND)
    def get(incident_id: Id, ctx: Ctx, _: Viewer) -> PostmortemView:
        with _answers(), ctx.store.read() as session:
            return service.get_postmortem(session, incident_id=incident_id)

    @r.get(
        "/postmortems/{incident_id}/markdown",
        summary="The post-mortem in the blameless template, as Markdown",
        response_class=PlainTextResponse,
        responses={**NOT_FOUND, 200: {"content": {"text/markdown": {}}}},
    )
    def markdown(incident_id: Id, ctx: Ctx, _: Viewer) -> PlainTextResponse:
        with _answers(), ctx.store.read() as session:
            text = render.markdown(service.get_postmortem(session, incident_id=incident_id))
        return PlainTextResponse(text, media_type="text/markdown; charset=utf-8")

    @r.patch("/postmortems/{incident_id}", summary="Edit sections (only the fields given)", responses=REFUSED)
    def edit(incident_id: Id, body: PostmortemEdit, ctx: Ctx, who: Responder) -> PostmortemView:
        with _answers(), ctx.store.write() as session:
            service.edit(session, incident_id=incident_id, changes=body, actor=who.actor, now=ctx.clock.now())
            return service.get_postmortem(session, incident_id=incident_id)

    for verb, move in MOVES.items():
        _move_route(r, verb, move.call, move.role, move.summary)

    @r.post(
        "/postmortems/{incident_id}/actions",
        status_code=201,
        summary="Add an action item (its owner is reminded before it is due and while overdue)",
        responses=REFUSED,
    )
    def add_action(incident_id: Id, body: ActionBody, ctx: Ctx, who: Responder) -> ActionView:
        with _answers(), ctx.store.write() as session:
            people, settings = _plan(ctx, session)
            row = actions.add_action(
                session,
                incident_id=incident_id,
                title=body.title,
                owner=body.owner,
                due_on=body.due_on,
                people=people,
                settings=settings,
                actor=who.actor,
                now=ctx.clock.now(),
            )
            return action_view(row)

    @r.patch(
        "/postmortems/{incident_id}/actions/{action_id}",
        summary="Change an action item: title, owner, due date, or status done / cancelled",
        responses=REFUSED,
    )
    def change_action(
        incident_id: Id, action_id: Id, body: ActionChange, ctx: Ctx, who: Responder
    ) -> ActionView:
        with _answers(), ctx.store.write() as session:
            if actions.get_action(session, action_id=action_id).incident_id != incident_id:
                raise PostmortemNotFound(f"incident {incident_id}'s post-mortem has no action {action_id}")
            people, settings = _plan(ctx, session)
            row = actions.update_action(
                session,
                action_id=action_id,
                people=people,
                settings=settings,
                actor=who.actor,
                now=ctx.clock.now(),
                title=body.title,
                owner=body.owner,
                due_on=body.due_on,
                status=body.status,
            )
            return action_view(row)

    return r


def _move_route(
    r: APIRouter, verb: str, move: Callable[..., PostmortemRow], role: Role, summary: str
) -> None:
    @r.post(
        f"/postmortems/{{incident_id}}/{verb}",
        name=f"{verb.replace('-', '_')}_postmortem",
        summary=summary,
        responses=REFUSED,
    )
    def change_state(
        incident_id: Id,
        ctx: Ctx,
        body: NoteBody | None = None,
        who: Principal = Depends(require(role)),  # a default, not Annotated: ``role`` is local
    ) -> PostmortemView:
        with _answers(), ctx.store.write() as session:
            move(
                session,
                incident_id=incident_id,
                actor=who.actor,
                now=ctx.clock.now(),
                note=body.note if body else "",
            )
            return service.get_postmortem(session, incident_id=incident_id)


def _brief(row: PostmortemRow) -> PostmortemBrief:
    return PostmortemBrief.model_validate(row, from_attributes=True)


def _plan(ctx: AppContext, session: Session) -> tuple[set[str], PostmortemSettings]:
    loaded = ctx.engine.loaded if ctx.engine is not None else None
    return planned.people_and_settings(loaded.plan if loaded else None, session)


@contextlib.contextmanager
def _answers() -> Iterator[None]:
    """Domain refusals become problem responses: unknown → 404, not allowed now → 409."""
    try:
        yield
    except PostmortemNotFound as exc:
        raise HTTPException(404, str(exc)) from None
    except PostmortemError as exc:
        raise HTTPException(409, str(exc)) from None
