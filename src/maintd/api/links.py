"""Acknowledge and resolve from a page: ``/ack/{token}`` and ``/resolve/{token}``, no API token needed.

GET only shows the incident and a button; POST acts. Mail scanners and chat
unfurlers fetch every link they see, so a GET that acknowledged would stop the
escalation before anyone read the page. The signed token names the incident,
the person and the action (maintd.incidents.links makes them); the pages are
plain HTML without scripts, every value escaped.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from html import escape
from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.responses import HTMLResponse
from sqlalchemy.orm import Session

from maintd.api.deps import AppContext, context, poke
from maintd.incidents import service
from maintd.incidents.links import ACK, PERSON, RESOLVE
from maintd.incidents.states import IncidentError, State
from maintd.plan.incidents import IncidentSettings
from maintd.signing import BadToken, verify
from maintd.store.models import IncidentRow

Ctx = Annotated[AppContext, Depends(context)]

VIA = "link"
NOTES = {ACK: "acknowledged from a notification link", RESOLVE: "resolved from a notification link"}
BUTTONS = {ACK: "Acknowledge", RESOLVE: "Resolve"}
# States in which the action has nothing left to do: said so with 200, not refused.
DONE = {
    ACK: (State.acknowledged, State.mitigated, State.resolved),
    RESOLVE: (State.resolved,),
}
RESPONSES: dict[int | str, dict[str, object]] = {
    200: {"content": {"text/html": {}}, "description": "the incident, and what the link did or will do"},
    403: {"description": "the link is expired, forged or for another action; the page says which"},
    404: {"description": "no such incident"},
    409: {"description": "the incident is closed"},
}
# The token is a credential in the URL: keep it out of caches, referrers, search engines and scripts.
HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Robots-Tag": "noindex, nofollow",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'",
}


class Refused(Exception):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status


@dataclass(frozen=True)
class Link:
    incident_id: int
    person: str
    actor: str


def router() -> APIRouter:
    r = APIRouter(tags=["links"])
    for action in (ACK, RESOLVE):
        _routes(r, action)
    return r


def _routes(r: APIRouter, action: str) -> None:
    verb = BUTTONS[action].lower()

    @r.get(
        f"/{action}/{{token}}",
        name=f"{action}_link_page",
        summary=f"The page behind a {verb} link: the incident and a button (changes nothing)",
        response_class=HTMLResponse,
        responses=RESPONSES,
    )
    def page(token: str, ctx: Ctx) -> HTMLResponse:
        try:
            with ctx.store.read() as session:
                link = _link(session, token, action, ctx.clock.now())
                incident = _open_incident(session, link.incident_id)
                if State(incident.state) in DONE[action]:
                    return _page(incident, f"Already {incident.state}: nothing to do.", None)
                return _page(incident, f"{BUTTONS[action]} this incident as {link.person}?", action)
        except Refused as exc:
            return _refusal(exc)

    @r.post(
        f"/{action}/{{token}}",
        name=f"{action}_link",
        summary=f"{BUTTONS[action]} the incident as the person the link was made for",
        response_class=HTMLResponse,
        responses=RESPONSES,
    )
    def act(token: str, ctx: Ctx) -> HTMLResponse:
        now = ctx.clock.now()
        try:
            with ctx.store.write() as session:
                link = _link(session, token, action, now)
                # Locked first, so two clicks at once on PostgreSQL take turns and the second says "already".
                incident = _open_incident(session, link.incident_id, lock=True)
                if State(incident.state) in DONE[action]:
                    return _page(incident, f"Already {incident.state}: nothing changed.", None)
                change = service.acknowledge if action == ACK else service.resolve
                try:
                    change(
                        session,
                        incident_id=link.incident_id,
                        actor=link.actor,
                        now=now,
                        settings=_settings(ctx, session),
                        note=NOTES[action],
                        via=VIA,
                    )
                except IncidentError as exc:
                    raise Refused(409, str(exc)) from None
                done = _page(incident, f"{incident.state.capitalize()} by {link.person}. Thank you.", None)
        except Refused as exc:
            return _refusal(exc)
        poke(ctx)  # committed: a resolve queued notices to deliver
        return done


def _link(session: Session, token: str, action: str, now: datetime) -> Link:
    try:
        grant = verify(session, token, action=action, now=now)
    except BadToken as exc:
        raise Refused(403, str(exc)) from None
    kind, _, number = grant.subject.partition(":")
    if kind != "incident" or not number.isdigit() or not grant.actor.startswith(PERSON):
        raise Refused(403, "this link is not for acting on an incident")
    return Link(int(number), grant.actor.removeprefix(PERSON), grant.actor)


def _open_incident(session: Session, incident_id: int, *, lock: bool = False) -> IncidentRow:
    incident = session.get(IncidentRow, incident_id, with_for_update=lock, populate_existing=lock)
    if incident is None:
        raise Refused(404, f"no incident {incident_id}")
    if incident.state == State.closed.value:
        raise Refused(409, f"incident {incident_id} is closed")
    return incident


def _settings(ctx: AppContext, session: Session) -> IncidentSettings:
    loaded = ctx.engine.loaded if ctx.engine is not None else None
    return loaded.plan.incidents if loaded is not None else service.stored_settings(session)


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M UTC") if value is not None else "-"


def _page(incident: IncidentRow, message: str, action: str | None) -> HTMLResponse:
    facts = (
        ("Incident", f"#{incident.id}"),
        ("Priority", incident.priority),
        ("Title", incident.title),
        ("State", incident.state),
        ("Acknowledge by", _when(incident.ack_deadline)),
        ("Assignee", incident.assignee or "-"),
    )
    rows = "".join(f"<tr><th>{escape(k)}</th><td>{escape(v)}</td></tr>" for k, v in facts)
    # No action attribute: the form posts back to this very URL, token included.
    form = (
        f'<form method="post"><button type="submit">{escape(BUTTONS[action])}</button></form>'
        if action
        else ""
    )
    body = f"<table>{rows}</table><p>{escape(message)}</p>{form}"
    return _html(200, f"Incident #{incident.id}: {incident.title}", body)


def _refusal(exc: Refused) -> HTMLResponse:
    return _html(exc.status, "This link cannot be used", f"<p>{escape(str(exc))}</p>")


def _html(status: int, title: str, body: str) -> HTMLResponse:
    page = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)} - maintd</title>"
        "<style>body{font-family:sans-serif;max-width:40em;margin:2em auto;padding:0 1em}"
        "th{text-align:left;padding-right:1em}button{font-size:1.2em;padding:.4em 1.2em}</style>"
        f"</head><body><h1>{escape(title)}</h1>{body}</body></html>"
    )
    return HTMLResponse(page, status_code=status, headers=HEADERS)
