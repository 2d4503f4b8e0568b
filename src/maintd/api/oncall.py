"""On-call: who is on call now, and iCalendar feeds of the shifts ahead, from the active plan.

Calendar apps subscribe to a URL and cannot send an Authorization header, so the
feeds also take ``?token=``: a signed grant for that one feed (``maintd oncall
feed-url`` prints one), which opens no other route and no other feed.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response
from pydantic import BaseModel, TypeAdapter

from maintd import views
from maintd.api.deps import AllLimit, AppContext, Offset, context, page, require
from maintd.auth import Principal, Role
from maintd.clock import utc
from maintd.oncall import OnCallSchedule, Person, on_call, person_shifts, shifts
from maintd.oncall.handoff import Report, handoff_report, report_window
from maintd.oncall.ics import calendar
from maintd.signing import BadToken, verify

Ctx = Annotated[AppContext, Depends(context)]
Viewer = Annotated[Principal, Depends(require(Role.viewer))]
Weeks = Annotated[int, Query(ge=1, le=52, description="how many weeks ahead")]
FeedToken = Annotated[
    str | None,
    Query(description="a feed token (maintd oncall feed-url) instead of the Authorization header"),
]
FEED = "feed"

ICS_TYPE = "text/calendar; charset=utf-8"
ICS_RESPONSES: dict[int | str, dict[str, object]] = {
    200: {"content": {"text/calendar": {}}, "description": "an iCalendar feed (RFC 5545)"},
    403: {"description": "the feed token is forged, expired, or for another feed"},
    404: {"description": "no such schedule or person in the active plan"},
}

_people = TypeAdapter(list[Person])
_schedules = TypeAdapter(list[OnCallSchedule])


class OnCallNow(BaseModel):
    schedule: str
    at: datetime
    layers: dict[str, str | None]


def _roster(ctx: AppContext) -> tuple[list[Person], list[OnCallSchedule]]:
    """Only the on-call sections of the active plan: no need to validate thousands of tasks."""
    with ctx.store.read() as session:
        row = views.active_plan(session)
        document = row.document if row is not None else {}
    return _people.validate_python(document.get("people", [])), _schedules.validate_python(
        document.get("schedules", [])
    )


def _feed_access(request: Request, ctx: AppContext, token: str | None, subject: str) -> None:
    """A feed token for exactly this feed, else a viewer's bearer token."""
    if token is None:
        require(Role.viewer)(request, ctx)
        return
    try:
        with ctx.store.read() as session:
            grant = verify(session, token, action=FEED, now=ctx.clock.now())
    except BadToken as exc:
        raise HTTPException(403, str(exc)) from None
    if grant.subject != subject:
        raise HTTPException(403, f"this feed token is for {grant.subject}, not {subject}")


def _ics(body: str, name: str) -> Response:
    return Response(
        body, media_type=ICS_TYPE, headers={"Content-Disposition": f'inline; filename="{name}.ics"'}
    )


def router() -> APIRouter:
    r = APIRouter(tags=["on-call"])

    @r.get("/oncall", summary="Who is on call now, per schedule and layer")
    def now(
        ctx: Ctx,
        _: Viewer,
        schedule: Annotated[str | None, Query(max_length=128, description="only this schedule")] = None,
        limit: AllLimit = None,
        offset: Offset = 0,
    ) -> list[OnCallNow]:
        at = ctx.clock.now()
        found = [s for s in _roster(ctx)[1] if schedule in (None, s.name)]
        return [OnCallNow(schedule=s.name, at=at, layers=on_call(s, at)) for s in page(found, limit, offset)]

    @r.get(
        "/oncall/people/{person}.ics",
        summary="A person's shifts in every schedule, as iCalendar",
        response_class=Response,
        responses=ICS_RESPONSES,
    )
    def person_feed(
        person: str, request: Request, ctx: Ctx, weeks: Weeks = 8, token: FeedToken = None
    ) -> Response:
        _feed_access(request, ctx, token, f"person:{person}")
        people, schedules = _roster(ctx)
        if person not in {p.name for p in people}:
            raise HTTPException(404, f"no person {person!r} in the active plan")
        start = ctx.clock.now()
        found = person_shifts(schedules, person, start, start + timedelta(weeks=weeks))
        return _ics(calendar(f"on call: {person}", found, start), person)

    @r.get(
        "/oncall/{schedule}.ics",
        summary="A schedule's shifts, every layer, as iCalendar",
        response_class=Response,
        responses=ICS_RESPONSES,
    )
    def schedule_feed(
        schedule: str, request: Request, ctx: Ctx, weeks: Weeks = 8, token: FeedToken = None
    ) -> Response:
        _feed_access(request, ctx, token, f"schedule:{schedule}")
        found = [s for s in _roster(ctx)[1] if s.name == schedule]
        if not found:
            raise HTTPException(404, f"no schedule {schedule!r} in the active plan")
        start = ctx.clock.now()
        listed = shifts(found[0], start, start + timedelta(weeks=weeks))
        return _ics(calendar(f"on call: {schedule}", listed, start), schedule)

    @r.get(
        "/oncall/{schedule}/handoff",
        summary="The handoff report: open incidents, and pages and incidents since the previous handoff",
        responses={404: {"description": "no such schedule in the active plan"}},
    )
    def handoff(
        schedule: str,
        ctx: Ctx,
        _: Viewer,
        at: Annotated[datetime | None, Query(description="the report at this time (default: now)")] = None,
    ) -> Report:
        found = [s for s in _roster(ctx)[1] if s.name == schedule]
        if not found:
            raise HTTPException(404, f"no schedule {schedule!r} in the active plan")
        moment = utc(at) if at is not None else ctx.clock.now()
        with ctx.store.read() as session:
            return handoff_report(
                session, schedule=found[0], at=moment, since=report_window(found[0], moment)
            )

    return r
