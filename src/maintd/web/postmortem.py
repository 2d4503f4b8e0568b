"""One post-mortem's page: edit the blameless draft's sections, move it through review to
complete, add action items, change an open one's owner or due date, mark it done or cancel it.

Every form goes through the post-mortem room's own services, the API's routes' rules and
roles included (maintd.api.postmortems): a viewer reads; a responder edits, asks for a review
and manages action items; sending back and completing (the sign-off that lets a P0/P1
incident close) need a team lead. Bad input shows the page again with the message beside its
form and what was typed kept; nothing of it is written.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import ValidationError
from sqlalchemy.orm import Session

from maintd.api.deps import AppContext, Id
from maintd.api.postmortems import ActionBody, ActionChange
from maintd.auth import Role
from maintd.plan.postmortems import PostmortemSettings
from maintd.postmortems import actions, planned, service
from maintd.postmortems.model import (
    TEXT_FIELDS,
    TIME_FIELDS,
    TRANSITIONS,
    ActionStatus,
    PostmortemEdit,
    PostmortemError,
    PostmortemNotFound,
    PostmortemState,
)
from maintd.postmortems.moves import MOVES
from maintd.store.models import PostmortemActionRow, PostmortemRow
from maintd.web.auth import WebSession
from maintd.web.common import Ctx, Form, Gather, Invalid, NotFound, act, again, problems, show
from maintd.web.render import field_time

TEMPLATE = "postmortem.html"
NAV = "/postmortems"
# NotFound first: it is a PostmortemError too.
REFUSALS = ((PostmortemNotFound, 404), (PostmortemError, 409))
LABELS = {
    "title": "Title",
    "severity": "Severity",
    "summary": "Summary",
    "impact": "Impact",
    "what_happened": "Root cause: what happened",
    "why_it_happened": "Root cause: why it happened",
    "contributing_factors": "Contributing factors",
    "lessons_learned": "Lessons learned",
    "what_went_well": "What went well",
    "what_could_be_improved": "What could be improved",
    "alert_triggered_at": "Alert triggered",
    "response_begun_at": "Response begun",
    "root_cause_identified_at": "Root cause identified",
    "fix_implemented_at": "Fix implemented",
    "resolved_at": "Resolved",
    "owner": "Owner",
    "due_on": "Due on",
}
LINES = ("title", "severity")  # one-line inputs; the other text sections are paragraphs
FINISH = {"done": ActionStatus.done, "cancel": ActionStatus.cancelled}  # button path → status


def router() -> APIRouter:
    r = APIRouter(include_in_schema=False)

    @r.get("/postmortems/{incident_id}")
    def postmortem(incident_id: Id, request: Request, ctx: Ctx) -> Response:
        return show(request, ctx, TEMPLATE, NAV, _gather(ctx, incident_id))

    @r.post("/postmortems/{incident_id}/edit")
    def edit(incident_id: Id, request: Request, ctx: Ctx, fields: Form) -> Response:
        def do(session: Session, web: WebSession, now: datetime) -> None:
            changes = _edit(service.load(session, incident_id=incident_id), fields)
            try:
                service.edit(
                    session, incident_id=incident_id, changes=changes, actor=web.principal.actor, now=now
                )
            except PostmortemNotFound:
                raise
            except PostmortemError as exc:
                raise Invalid(str(exc)) from None

        shown = again(ctx, TEMPLATE, NAV, _gather(ctx, incident_id), "edit", fields)
        return act(request, ctx, fields, Role.responder, do, _back(incident_id), REFUSALS, shown)

    for path in MOVES:
        _move_route(r, path)

    @r.post("/postmortems/{incident_id}/actions")
    def add_action(incident_id: Id, request: Request, ctx: Ctx, fields: Form) -> Response:
        def do(session: Session, web: WebSession, now: datetime) -> None:
            try:
                body = ActionBody.model_validate(
                    {name: fields.get(name, "").strip() for name in ("title", "owner", "due_on")}
                )
            except ValidationError as exc:
                raise Invalid(problems(exc, LABELS)) from None
            people, settings = _plan(ctx, session)
            try:
                actions.add_action(
                    session,
                    incident_id=incident_id,
                    title=body.title,
                    owner=body.owner,
                    due_on=body.due_on,
                    people=people,
                    settings=settings,
                    actor=web.principal.actor,
                    now=now,
                )
            except PostmortemNotFound:
                raise
            except PostmortemError as exc:
                raise Invalid(str(exc)) from None

        shown = again(ctx, TEMPLATE, NAV, _gather(ctx, incident_id), "action", fields)
        return act(request, ctx, fields, Role.responder, do, _back(incident_id), REFUSALS, shown)

    @r.post("/postmortems/{incident_id}/actions/{action_id}/change")
    def change_action(incident_id: Id, action_id: Id, request: Request, ctx: Ctx, fields: Form) -> Response:
        def do(session: Session, web: WebSession, now: datetime) -> None:
            row = _own_action(session, incident_id, action_id)  # 404 first
            try:
                given = {n: fields.get(n, "").strip() for n in ("owner", "due_on")}
                body = ActionChange.model_validate(given)
            except ValidationError as exc:
                raise Invalid(problems(exc, LABELS)) from None
            people, settings = _plan(ctx, session)
            try:
                actions.update_action(
                    session,
                    action_id=action_id,
                    people=people,
                    settings=settings,
                    actor=web.principal.actor,
                    now=now,
                    owner=body.owner,
                    due_on=body.due_on,
                )
            except PostmortemNotFound:
                raise
            except PostmortemError as exc:
                if row.status != ActionStatus.open:  # final: its form is gone, so a page saying why
                    raise
                raise Invalid(str(exc)) from None

        shown = again(ctx, TEMPLATE, NAV, _gather(ctx, incident_id), f"action-{action_id}", fields)
        return act(request, ctx, fields, Role.responder, do, _back(incident_id), REFUSALS, shown)

    for path in FINISH:
        _finish_route(r, path)

    return r


def _move_route(r: APIRouter, path: str) -> None:
    call, role = MOVES[path].call, MOVES[path].role

    @r.post(f"/postmortems/{{incident_id}}/{path}", name=f"web_{path.replace('-', '_')}_postmortem")
    def move(incident_id: Id, request: Request, ctx: Ctx, fields: Form) -> Response:
        def do(session: Session, web: WebSession, now: datetime) -> None:
            call(
                session,
                incident_id=incident_id,
                actor=web.principal.actor,
                now=now,
                note=fields.get("note", ""),
            )

        return act(request, ctx, fields, role, do, _back(incident_id), REFUSALS)


def _finish_route(r: APIRouter, path: str) -> None:
    status = FINISH[path]

    @r.post(f"/postmortems/{{incident_id}}/actions/{{action_id}}/{path}", name=f"web_{path}_action")
    def finish(incident_id: Id, action_id: Id, request: Request, ctx: Ctx, fields: Form) -> Response:
        def do(session: Session, web: WebSession, now: datetime) -> None:
            _own_action(session, incident_id, action_id)
            people, settings = _plan(ctx, session)
            actions.update_action(
                session,
                action_id=action_id,
                people=people,
                settings=settings,
                actor=web.principal.actor,
                now=now,
                status=status,
            )

        return act(request, ctx, fields, Role.responder, do, _back(incident_id), REFUSALS)


def _own_action(session: Session, incident_id: int, action_id: int) -> PostmortemActionRow:
    """An action item of another post-mortem is not found here, as in the API."""
    row = actions.get_action(session, action_id=action_id)
    if row.incident_id != incident_id:
        raise PostmortemNotFound(f"incident {incident_id}'s post-mortem has no action {action_id}")
    return row


def _gather(ctx: AppContext, incident_id: int) -> Gather:
    def values(session: Session, now: datetime, web: WebSession) -> dict[str, Any]:
        try:
            found = service.get_postmortem(session, incident_id=incident_id)
        except PostmortemNotFound as exc:
            raise NotFound(str(exc)) from None
        state = PostmortemState(found.state)
        people, _ = _plan(ctx, session)
        return {
            "pm": found,
            "texts": [(name, LABELS[name], name in LINES) for name in _TEXTS],
            "times": [(name, LABELS[name]) for name in TIME_FIELDS],
            "moves": [
                (path, move.label)
                for path, move in MOVES.items()
                if move.leads_to in TRANSITIONS[state] and web.may(move.role)
            ],
            "may_edit": web.may(Role.responder) and state is not PostmortemState.complete,
            "may_act": web.may(Role.responder),
            "people": sorted(people),
            "today": now.date(),
        }

    return values


# The template's order: the heading, then what happened and why, then what was learned.
_TEXTS = ("title", "severity", *(name for name in TEXT_FIELDS if name not in LINES))


def _edit(row: PostmortemRow, fields: dict[str, str]) -> PostmortemEdit:
    """The sections the form changed: a field sent back as the page showed it is left out, so a
    time shown to the second is not cut to it and the timeline names only what was edited."""
    given: dict[str, Any] = {}
    for name in TEXT_FIELDS:
        if name in fields:
            text = fields[name].replace("\r\n", "\n")  # browsers send a textarea's lines with CRLF
            if text.strip() != (getattr(row, name) or "").strip():
                given[name] = text
    for name in TIME_FIELDS:
        if name in fields:
            text = fields[name].strip()
            if text != field_time(getattr(row, name)):
                given[name] = text or None
    try:
        return PostmortemEdit.model_validate(given)
    except ValidationError as exc:
        raise Invalid(problems(exc, LABELS)) from None


def _plan(ctx: AppContext, session: Session) -> tuple[set[str], PostmortemSettings]:
    loaded = ctx.engine.loaded if ctx.engine is not None else None
    return planned.people_and_settings(loaded.plan if loaded else None, session)


def _back(incident_id: int) -> str:
    return f"/postmortems/{incident_id}"
