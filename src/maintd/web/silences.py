"""The silences page: the pending and active silences, the recently expired ones, a form to
create one (its author is the logged-in person) and a button to expire one early.

The API's rules and roles (maintd.api.incidents): the form is read by the API's own body
model (matchers parsed, exactly one of an end and a duration) and written by
maintd.alerts.silences; a viewer reads, a responder creates and expires. Bad input shows the
page again with the message and what was typed; nothing is written.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from maintd import views
from maintd.alerts.silences import create_silence, expire_silence
from maintd.api.deps import Id
from maintd.api.incidents import SilenceBody
from maintd.auth import Role
from maintd.plan.incidents import Matcher
from maintd.store.models import SilenceRow
from maintd.web.auth import WebSession
from maintd.web.common import Ctx, Form, Invalid, act, again, problems, show

TEMPLATE = "silences.html"
NAV = "/silences"
LIMIT = 200  # pending and active ones shown
EXPIRED = 50  # the most recently created expired ones shown
REFUSALS = ((LookupError, 404),)
LABELS = {
    "matchers": "Matchers",
    "starts_at": "Starts at",
    "ends_at": "Ends at",
    "duration": "Duration",
    "comment": "Comment",
}


def router() -> APIRouter:
    r = APIRouter(include_in_schema=False)

    @r.get("/silences")
    def silences(request: Request, ctx: Ctx) -> Response:
        return show(request, ctx, TEMPLATE, NAV, _values)

    @r.post("/silences")
    def create(request: Request, ctx: Ctx, fields: Form) -> Response:
        def do(session: Session, web: WebSession, now: datetime) -> None:
            body = _body(fields)
            starts_at, ends_at = body.span(now)
            try:
                create_silence(
                    session,
                    matchers=[Matcher.parse(m) for m in body.matchers],
                    starts_at=starts_at,
                    ends_at=ends_at,
                    created_by=web.principal.actor,
                    comment=body.comment,
                    now=now,
                )
            except ValueError as exc:
                raise Invalid(str(exc)) from None

        shown = again(ctx, TEMPLATE, NAV, _values, "create", fields)
        return act(request, ctx, fields, Role.responder, do, NAV, REFUSALS, shown)

    @r.post("/silences/{silence_id}/expire")
    def expire(silence_id: Id, request: Request, ctx: Ctx, fields: Form) -> Response:
        def do(session: Session, web: WebSession, now: datetime) -> None:
            expire_silence(session, silence_id, now=now, actor=web.principal.actor)

        return act(request, ctx, fields, Role.responder, do, NAV, REFUSALS)

    return r


def _body(fields: dict[str, str]) -> SilenceBody:
    """The form as the API's body: one matcher a line; empty times and duration left out."""
    given: dict[str, Any] = {
        "matchers": [line.strip() for line in fields.get("matchers", "").splitlines() if line.strip()],
        "comment": fields.get("comment", "").strip(),
    }
    for name in ("starts_at", "ends_at", "duration"):
        if fields.get(name, "").strip():
            given[name] = fields[name].strip()
    try:
        return SilenceBody.model_validate(given)
    except ValidationError as exc:
        raise Invalid(problems(exc, LABELS)) from None


def _values(session: Session, now: datetime, web: WebSession) -> dict[str, Any]:
    expired = session.scalars(
        select(SilenceRow).where(SilenceRow.ends_at <= now).order_by(SilenceRow.id.desc()).limit(EXPIRED)
    )
    return {
        "current": views.silences(session, now=now, limit=LIMIT),
        "expired": [views.silence_view(row, now) for row in expired],
        "may_act": web.may(Role.responder),
        "limit": LIMIT,
        "expired_limit": EXPIRED,
    }
