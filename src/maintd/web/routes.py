"""The dashboard's session pages and incident pages: log in and out, the overview, incidents and
what a responder does with one (acknowledge, mitigate, resolve, add a note).

Roles are the API's: a viewer reads; acting on an incident needs a responder. Every
POST checks the session, its CSRF token and the role before anything is read.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from maintd.api.deps import AppContext, poke
from maintd.auth import Role
from maintd.incidents import service
from maintd.incidents.states import TRANSITIONS, IncidentError, State
from maintd.plan.incidents import IncidentSettings, Priority
from maintd.store.models import PostmortemRow
from maintd.web import auth, render
from maintd.web.auth import WebSession
from maintd.web.common import NAV, Ctx, Form, NotFound, act, refuse, session_of, show
from maintd.web.overview import deadline, gather

ACTIONS = {  # form path → (service call, the state it leads to, button label)
    "acknowledge": (service.acknowledge, State.acknowledged, "Acknowledge"),
    "mitigate": (service.mitigate, State.mitigated, "Mitigate"),
    "resolve": (service.resolve, State.resolved, "Resolve"),
}
STATES = ("open", *(s.value for s in State), "all")
LIST_LIMIT = 200
# IncidentNotFound first: it is an IncidentError too.
REFUSALS = ((service.IncidentNotFound, 404), (IncidentError, 409))
SHOWN = 20  # open incidents per priority on the overview; the counts include the rest


def router() -> APIRouter:
    r = APIRouter(include_in_schema=False)
    _session_routes(r)

    @r.get("/")
    def overview(request: Request, ctx: Ctx) -> Response:
        return show(
            request, ctx, "overview.html", "/", lambda s, now, _: {"o": gather(s, now), "shown": SHOWN}
        )

    @r.get("/incidents")
    def incidents(
        request: Request,
        ctx: Ctx,
        state: Annotated[str, Query(pattern="^(" + "|".join(STATES) + ")$")] = "open",
        priority: Priority | None = None,
    ) -> Response:
        def values(session: Session, now: datetime, _: WebSession) -> dict[str, Any]:
            chosen = None if state == "all" else state
            rows = service.list_incidents(session, state=chosen, priority=priority, limit=LIST_LIMIT)
            return {
                "incidents": [(row, deadline(row, now)) for row in rows],
                "state": state,
                "states": STATES,
                "priority": priority.value if priority else "",
                "priorities": [p.value for p in Priority],
                "limit": LIST_LIMIT,
            }

        return show(request, ctx, "incidents.html", "/incidents", values)

    @r.get("/incidents/{incident_id}")
    def incident(incident_id: int, request: Request, ctx: Ctx) -> Response:
        def values(session: Session, now: datetime, web: WebSession) -> dict[str, Any]:
            try:
                found = service.get_incident(session, incident_id=incident_id)
            except service.IncidentNotFound as exc:
                raise NotFound(str(exc)) from None
            state = State(found.incident.state)
            allowed = [(path, label) for path, (_, to, label) in ACTIONS.items() if to in TRANSITIONS[state]]
            return {
                "incident": found.incident,
                "deadline": deadline(found.incident, now),
                "alerts": found.alerts,
                "timeline": found.timeline,
                "steps": found.steps,
                "actions": allowed if web.may(Role.responder) else [],
                "may_note": web.may(Role.responder),
                "postmortem": session.scalar(
                    select(PostmortemRow.state).where(PostmortemRow.incident_id == incident_id)
                ),
            }

        return show(request, ctx, "incident.html", "/incidents", values)

    for path in ACTIONS:
        _action_route(r, path)

    @r.post("/incidents/{incident_id}/notes")
    def add_note(incident_id: int, request: Request, ctx: Ctx, fields: Form) -> Response:
        def do(session: Session, web: WebSession, now: datetime) -> None:
            service.add_note(
                session,
                incident_id=incident_id,
                note=fields.get("note", ""),
                actor=web.principal.actor,
                now=now,
            )

        return act(request, ctx, fields, Role.responder, do, f"/incidents/{incident_id}", REFUSALS)

    return r


def _action_route(r: APIRouter, path: str) -> None:
    call = ACTIONS[path][0]

    @r.post(f"/incidents/{{incident_id}}/{path}", name=f"web_{path}_incident")
    def change_state(incident_id: int, request: Request, ctx: Ctx, fields: Form) -> Response:
        def do(session: Session, web: WebSession, now: datetime) -> None:
            call(
                session,
                incident_id=incident_id,
                actor=web.principal.actor,
                now=now,
                settings=_settings(ctx, session),
                note=fields.get("note", ""),
            )

        response = act(request, ctx, fields, Role.responder, do, f"/incidents/{incident_id}", REFUSALS)
        if response.status_code == 303:
            poke(ctx)  # committed: a resolve queued notices to deliver
        return response


def _settings(ctx: AppContext, session: Session) -> IncidentSettings:
    loaded = ctx.engine.loaded if ctx.engine is not None else None
    return loaded.plan.incidents if loaded is not None else service.stored_settings(session)


def _session_routes(r: APIRouter) -> None:
    @r.get("/login")
    def login_page(request: Request, ctx: Ctx, next: str = "/") -> Response:
        with ctx.store.read() as session:
            if session_of(request, session, ctx.clock.now()) is not None:
                return RedirectResponse(_local(next), status_code=303)
        return _login_form(request, _local(next), None)

    @r.post("/login")
    def login(request: Request, ctx: Ctx, fields: Form) -> Response:
        target = _local(fields.get("next", "/"))
        if not auth.same(fields.get("login_csrf"), request.cookies.get(auth.LOGIN_COOKIE)):
            return _login_form(request, target, "The login form expired: try again.", 403)
        with ctx.store.write() as session:
            started = auth.login(session, fields.get("token", ""), now=ctx.clock.now())
        if started is None:
            return _login_form(request, target, "Unknown or revoked token.", 401)
        cookie, _ = started
        response = RedirectResponse(target, status_code=303)
        _set_cookie(request, response, auth.COOKIE, cookie, int(auth.TTL.total_seconds()))
        response.delete_cookie(auth.LOGIN_COOKIE, path="/")
        return response

    @r.post("/logout")
    def logout(request: Request, ctx: Ctx, fields: Form) -> Response:
        now = ctx.clock.now()
        with ctx.store.write() as session:
            web = session_of(request, session, now)
            if web is not None:
                if not auth.same(fields.get("csrf"), web.csrf):
                    return refuse(403, "Form refused", "This form's CSRF token is missing or wrong.", web)
                auth.logout(session, web, now=now)
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(auth.COOKIE, path="/")
        return response


def _login_form(request: Request, target: str, error: str | None, status: int = 200) -> Response:
    nonce = auth.new_login_nonce()
    response = render.page(
        "login.html", code=status, web=None, nav=NAV, here="", next=target, login_csrf=nonce, error=error
    )
    _set_cookie(request, response, auth.LOGIN_COOKIE, nonce, 3600)
    return response


def _set_cookie(request: Request, response: Response, name: str, value: str, max_age: int) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path="/",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )


def _local(target: str) -> str:
    """Only a path on this site: never another host (``//evil``, ``/\\evil``, ``https://...``)."""
    if not target.startswith("/") or target.startswith(("//", "/\\")):
        return "/"
    return target
