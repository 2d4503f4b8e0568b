"""On-call: who is on call now, and iCalendar feeds of the shifts ahead, from the active plan."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query, Response
from pydantic import BaseModel, TypeAdapter

from maintd import views
from maintd.api.deps import AppContext, context, require
from maintd.auth import Principal, Role
from maintd.oncall import OnCallSchedule, Person, on_call, person_shifts, shifts
from maintd.oncall.ics import calendar

Ctx = Annotated[AppContext, Depends(context)]
Viewer = Annotated[Principal, Depends(require(Role.viewer))]
Weeks = Annotated[int, Query(ge=1, le=52, description="how many weeks ahead")]

ICS_TYPE = "text/calendar; charset=utf-8"
ICS_RESPONSES: dict[int | str, dict[str, object]] = {
    200: {"content": {"text/calendar": {}}, "description": "an iCalendar feed (RFC 5545)"},
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


def _ics(body: str, name: str) -> Response:
    return Response(
        body, media_type=ICS_TYPE, headers={"Content-Disposition": f'inline; filename="{name}.ics"'}
    )


def router() -> APIRouter:
    r = APIRouter(tags=["on-call"])

    @r.get("/oncall", summary="Who is on call now, per schedule and layer")
    def now(ctx: Ctx, _: Viewer) -> list[OnCallNow]:
        at = ctx.clock.now()
        return [OnCallNow(schedule=s.name, at=at, layers=on_call(s, at)) for s in _roster(ctx)[1]]

    @r.get(
        "/oncall/people/{person}.ics",
        summary="A person's shifts in every schedule, as iCalendar",
        response_class=Response,
        responses=ICS_RESPONSES,
    )
    def person_feed(person: str, ctx: Ctx, _: Viewer, weeks: Weeks = 8) -> Response:
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
    def schedule_feed(schedule: str, ctx: Ctx, _: Viewer, weeks: Weeks = 8) -> Response:
        found = [s for s in _roster(ctx)[1] if s.name == schedule]
        if not found:
            raise HTTPException(404, f"no schedule {schedule!r} in the active plan")
        start = ctx.clock.now()
        listed = shifts(found[0], start, start + timedelta(weeks=weeks))
        return _ics(calendar(f"on call: {schedule}", listed, start), schedule)

    return r
