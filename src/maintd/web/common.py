"""What every dashboard route shares: the session check, rendering inside one read session,
form bodies, a form shown again with its error and what was typed, and the answers for
"log in first", "not allowed" and "not found"."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Annotated, Any
from urllib.parse import parse_qs, quote

from fastapi import Depends, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError
from sqlalchemy.orm import Session

from maintd.api.deps import AppContext, context
from maintd.auth import Role
from maintd.web import auth, render
from maintd.web.auth import WebSession

Ctx = Annotated[AppContext, Depends(context)]
MAX_FORM = 64 * 1024
FORM_TYPE = "application/x-www-form-urlencoded"

# The navigation bar: (path, label).
NAV = (
    ("/", "Overview"),
    ("/incidents", "Incidents"),
    ("/silences", "Silences"),
    ("/tasks", "Tasks"),
    ("/runs", "Runs"),
    ("/changes", "Changes"),
    ("/postmortems", "Post-mortems"),
    ("/reviews", "Reviews"),
    ("/kpis", "KPIs"),
    ("/capacity", "Capacity"),
    ("/inventory", "Inventory"),
)


class NotFound(Exception):
    """The page's subject does not exist; the message says which."""


class Invalid(Exception):
    """Bad input in a form: its page is shown again with this message and what was typed."""


Gather = Callable[[Session, datetime, WebSession], dict[str, Any]]
# A form's page again after bad input: (the session, the message) -> the page, status 422.
Again = Callable[[WebSession, str], Response]
NO_FORM: dict[str, Any] = {"failed": "", "form": {}, "error": ""}  # no form came back


async def form(request: Request) -> dict[str, str]:
    """A URL-encoded form body (the last value of each field); anything else is refused."""
    body = await request.body()
    if body and request.headers.get("content-type", "").split(";")[0].strip() != FORM_TYPE:
        raise HTTPException(415, f"send the form as {FORM_TYPE}")
    if len(body) > MAX_FORM:
        raise HTTPException(413, f"a form is at most {MAX_FORM} bytes")
    fields = parse_qs(body.decode("utf-8", errors="replace"), keep_blank_values=True)
    return {name: values[-1] for name, values in fields.items()}


Form = Annotated[dict[str, str], Depends(form)]


def session_of(request: Request, session: Session, now: datetime) -> WebSession | None:
    return auth.current(session, request.cookies.get(auth.COOKIE), now=now)


def to_login(request: Request) -> Response:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"/login?next={quote(target, safe='')}", status_code=303)


def show(
    request: Request,
    ctx: AppContext,
    template: str,
    nav: str,
    gather: Gather,
) -> Response:
    """A page for a logged-in viewer or above, rendered inside one read session."""
    now = ctx.clock.now()
    with ctx.store.read() as session:
        web = session_of(request, session, now)
        if web is None:
            return to_login(request)
        try:
            values = gather(session, now, web)
        except NotFound as exc:
            return refuse(404, "Not found", str(exc), web)
        return render.page(template, web=web, nav=NAV, here=nav, now=now, **NO_FORM, **values)


def again(
    ctx: AppContext, template: str, nav: str, gather: Gather, name: str, fields: dict[str, str]
) -> Again:
    """Show form ``name``'s page again after bad input, its message beside the form and the values
    sent kept in it (``failed``, ``form`` and ``error`` in the template), from a fresh read: the
    write that refused was rolled back."""

    def page(web: WebSession, message: str) -> Response:
        now = ctx.clock.now()
        with ctx.store.read() as session:
            try:
                values = gather(session, now, web)
            except NotFound as exc:
                return refuse(404, "Not found", str(exc), web)
            kept = {"failed": name, "form": fields, "error": message}
            return render.page(template, code=422, web=web, nav=NAV, here=nav, now=now, **kept, **values)

    return page


def problems(exc: ValidationError, labels: dict[str, str]) -> str:
    """A validation error as one line naming each field by its label in the form."""
    said = []
    for error in exc.errors():
        field = next((str(part) for part in error["loc"] if isinstance(part, str)), "")
        message = str(error["msg"]).removeprefix("Value error, ")
        said.append(f"{labels.get(field, field)}: {message}" if field else message)
    return "; ".join(said)


def check_post(web: WebSession | None, fields: dict[str, str], role: Role) -> Response | None:
    """None when the POST may go ahead; otherwise the refusal to send."""
    if web is None:
        return refuse(401, "Logged out", "Your session has ended: log in again.", None)
    if not auth.same(fields.get("csrf"), web.csrf):
        return refuse(
            403, "Form refused", "This form's CSRF token is missing or wrong: reload the page.", web
        )
    if not web.may(role):
        return refuse(403, "Not allowed", f"This needs the {role} role; you are {web.principal.role}.", web)
    return None


def act(
    request: Request,
    ctx: AppContext,
    fields: dict[str, str],
    role: Role,
    do: Callable[[Session, WebSession, datetime], str | None],
    back: str,
    refusals: Sequence[tuple[type[Exception], int]],
    invalid: Again | None = None,
) -> Response:
    """Check the session, its CSRF token and the role, act in one write transaction, and go back
    to ``back`` (POST-redirect-GET), or to the page ``do`` returns (what it made, when the
    form's own page could not know it). A domain refusal (the first of ``refusals`` it is an instance
    of, with its HTTP status) is raised out of the transaction, so nothing of it is committed;
    so is ``Invalid`` from ``do``, answered with ``invalid`` (the form again) when given."""
    now = ctx.clock.now()
    web: WebSession | None = None
    try:
        with ctx.store.write() as session:
            web = session_of(request, session, now)
            refused = check_post(web, fields, role)
            if refused is not None or web is None:
                return refused or refuse(401, "Logged out", "Log in again.", None)
            target = do(session, web, now)
    except Invalid as exc:
        if invalid is None or web is None:
            return refuse(422, "Refused", str(exc), web)
        return invalid(web, str(exc))
    except tuple(kind for kind, _ in refusals) as exc:
        status = next(code for kind, code in refusals if isinstance(exc, kind))
        return refuse(status, "Not found" if status == 404 else "Refused", str(exc), web)
    return RedirectResponse(target or back, status_code=303)


def refuse(status: int, title: str, message: str, web: WebSession | None) -> HTMLResponse:
    return render.page("message.html", code=status, web=web, nav=NAV, here="", title=title, message=message)
