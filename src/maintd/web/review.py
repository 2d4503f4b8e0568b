"""The reviews pages: ``/reviews`` lists the open and recent reviews with their progress, where
a team lead opens a review of the plan on demand; ``/reviews/{id}`` is one review's checklist,
where a team lead records each area reviewed with notes, adds findings (owner, due date),
changes their owner or due date, marks them done or cancels them, and completes it.

Every form goes through the reviews room's services with the API's roles (maintd.reviews.roles,
the same table maintd.api.reviews uses) and the API's body models; bad input shows the page again
with the message beside its form and what was typed kept; nothing of it is written.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar

from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import ValidationError
from sqlalchemy.orm import Session

from maintd.api.deps import AppContext, Id
from maintd.api.reviews import Area, CheckBody, FindingBody, FindingChange, NoteBody, StartBody
from maintd.plan.postmortems import PostmortemSettings
from maintd.plan.reviews import Review
from maintd.reviews import (
    FindingStatus,
    ItemStatus,
    ReviewError,
    ReviewNotFound,
    ReviewState,
    findings,
    planned,
    roles,
    service,
)
from maintd.reviews.periods import parse
from maintd.store.models import ReviewFindingRow
from maintd.web.auth import WebSession
from maintd.web.common import Ctx, Form, Gather, Invalid, NotFound, act, again, problems, show

TEMPLATE = "review.html"
NAV = "/reviews"
OPEN_SHOWN, RECENT_SHOWN = 100, 20  # open reviews, then the most recent completed ones
OVERDUE_COUNTED = 10_000  # overdue open findings counted for the list (they are few)
# ReviewNotFound first: it is a ReviewError too.
REFUSALS = ((ReviewNotFound, 404), (ReviewError, 409))
LABELS = {"notes": "Notes", "area": "Area", "title": "Title", "owner": "Owner", "due_on": "Due on",
          "detail": "Detail", "note": "Note", "name": "Review", "period": "Period"}  # fmt: skip
Body = TypeVar("Body", CheckBody, FindingBody, FindingChange, NoteBody, StartBody)
T = TypeVar("T")
FINISH = {"done": FindingStatus.done, "cancel": FindingStatus.cancelled}  # button path → status


def router() -> APIRouter:
    r = APIRouter(include_in_schema=False)

    @r.get("/reviews")
    def reviews(request: Request, ctx: Ctx) -> Response:
        return show(request, ctx, "reviews.html", NAV, _list(ctx))

    @r.post("/reviews")
    def start(request: Request, ctx: Ctx, fields: Form) -> Response:
        def do(session: Session, web: WebSession, now: datetime) -> str:
            body = _valid(StartBody, {n: fields.get(n, "").strip() for n in ("name", "period")})  # "": now
            reviews, _people = _plan(ctx, session)
            return f"/reviews/{_domain(lambda: _start(session, reviews, body, web, now), lookups=True)}"

        shown = again(ctx, "reviews.html", NAV, _list(ctx), "start", fields)
        return act(request, ctx, fields, roles.RECORD, do, NAV, REFUSALS, shown)

    @r.get("/reviews/{review_id}")
    def review(review_id: Id, request: Request, ctx: Ctx) -> Response:
        return show(request, ctx, TEMPLATE, NAV, _gather(ctx, review_id))

    @r.post("/reviews/{review_id}/areas/{area}")
    def check(review_id: Id, area: Area, request: Request, ctx: Ctx, fields: Form) -> Response:
        def do(session: Session, web: WebSession, now: datetime) -> None:
            body = _valid(CheckBody, {"notes": fields.get("notes", "").replace("\r\n", "\n")})
            _domain(lambda: service.check(session, review_id=review_id, area=area, notes=body.notes,
                                          actor=web.principal.actor, now=now))  # fmt: skip

        shown = again(ctx, TEMPLATE, NAV, _gather(ctx, review_id), f"check-{area}", fields)
        return act(request, ctx, fields, roles.RECORD, do, _back(review_id), REFUSALS, shown)

    @r.post("/reviews/{review_id}/findings")
    def add_finding(review_id: Id, request: Request, ctx: Ctx, fields: Form) -> Response:
        def do(session: Session, web: WebSession, now: datetime) -> None:
            names = ("area", "title", "owner", "due_on", "detail")
            body = _valid(FindingBody, {n: fields.get(n, "").strip() for n in names})
            reviews, people = _plan(ctx, session)
            settings = planned.settings_of(reviews, service.load(session, review_id).name)  # 404 first
            _domain(lambda: findings.add_finding(
                session, review_id=review_id, area=body.area, title=body.title, owner=body.owner,
                due_on=body.due_on, detail=body.detail, people=people, settings=settings,
                actor=web.principal.actor, now=now,
            ), lookups=True)  # fmt: skip

        shown = again(ctx, TEMPLATE, NAV, _gather(ctx, review_id), "finding", fields)
        return act(request, ctx, fields, roles.RECORD, do, _back(review_id), REFUSALS, shown)

    @r.post("/reviews/{review_id}/findings/{finding_id}/change")
    def change_finding(review_id: Id, finding_id: Id, request: Request, ctx: Ctx, fields: Form) -> Response:
        def do(session: Session, web: WebSession, now: datetime) -> None:
            row, settings, people = _of_finding(ctx, session, review_id, finding_id)  # 404 first
            body = _valid(FindingChange, {n: fields.get(n, "").strip() for n in ("owner", "due_on")})

            def change() -> object:
                return findings.update_finding(
                    session, finding_id=finding_id, people=people, settings=settings,
                    actor=web.principal.actor, now=now, owner=body.owner, due_on=body.due_on,
                )  # fmt: skip

            if row.status == FindingStatus.open:
                _domain(change)
            else:  # final: its form is gone, so the refusal is a page of its own (409)
                change()

        shown = again(ctx, TEMPLATE, NAV, _gather(ctx, review_id), f"finding-{finding_id}", fields)
        return act(request, ctx, fields, roles.RECORD, do, _back(review_id), REFUSALS, shown)

    for path in FINISH:
        _finish_route(r, path)

    @r.post("/reviews/{review_id}/complete")
    def complete(review_id: Id, request: Request, ctx: Ctx, fields: Form) -> Response:
        def do(session: Session, web: WebSession, now: datetime) -> None:
            body = _valid(NoteBody, {"note": fields.get("note", "")})
            service.complete(session, review_id=review_id, actor=web.principal.actor, now=now, note=body.note)

        shown = again(ctx, TEMPLATE, NAV, _gather(ctx, review_id), "complete", fields)
        return act(request, ctx, fields, roles.RECORD, do, _back(review_id), REFUSALS, shown)

    return r


def _finish_route(r: APIRouter, path: str) -> None:
    status = FINISH[path]

    @r.post(f"/reviews/{{review_id}}/findings/{{finding_id}}/{path}", name=f"web_{path}_review_finding")
    def finish(review_id: Id, finding_id: Id, request: Request, ctx: Ctx, fields: Form) -> Response:
        def do(session: Session, web: WebSession, now: datetime) -> None:
            _, settings, people = _of_finding(ctx, session, review_id, finding_id)
            findings.update_finding(
                session,
                finding_id=finding_id,
                people=people,
                settings=settings,
                actor=web.principal.actor,
                now=now,
                status=status,
            )

        return act(request, ctx, fields, roles.RECORD, do, _back(review_id), REFUSALS)


def _start(session: Session, reviews: list[Review], body: StartBody, web: WebSession, now: datetime) -> int:
    """Open the plan's review ``body.name`` now, as ``POST /api/v1/reviews`` does."""
    review = service.plan_review(reviews, body.name)
    try:
        period = parse(review.cadence, body.period) if body.period else None
    except ValueError as exc:
        raise ReviewError(str(exc)) from None
    row = service.start(session, reviews=reviews, name=body.name, actor=web.principal.actor, now=now,
                        period=period)  # fmt: skip
    return row.id


def _of_finding(
    ctx: AppContext, session: Session, review_id: int, finding_id: int
) -> tuple[ReviewFindingRow, PostmortemSettings, set[str]]:
    """The finding, the reminders of its review and the plan's people; a finding of another
    review is not found."""
    row = findings.get_finding(session, finding_id=finding_id)
    if row.review_id != review_id:
        raise ReviewNotFound(f"review {review_id} has no finding {finding_id}")
    reviews, people = _plan(ctx, session)
    return row, planned.settings_of(reviews, service.load(session, review_id).name), people


def _list(ctx: AppContext) -> Gather:
    def values(session: Session, now: datetime, web: WebSession) -> dict[str, Any]:
        shown = [
            *service.list_reviews(session, state=ReviewState.open, limit=OPEN_SHOWN),
            *service.list_reviews(session, state=ReviewState.complete, limit=RECENT_SHOWN),
        ]
        overdue = Counter(
            f.review_id for f in findings.list_findings(session, overdue_at=now, limit=OVERDUE_COUNTED)
        )
        reviews, _ = _plan(ctx, session)
        return {"reviews": shown, "overdue": overdue, "open_shown": OPEN_SHOWN, "recent_shown": RECENT_SHOWN,
                "planned": reviews, "may_start": web.may(roles.RECORD), "role": roles.RECORD}  # fmt: skip

    return values


def _gather(ctx: AppContext, review_id: int) -> Gather:
    def values(session: Session, now: datetime, web: WebSession) -> dict[str, Any]:
        try:
            found = service.get_review(session, review_id=review_id)
        except ReviewNotFound as exc:
            raise NotFound(str(exc)) from None
        _, people = _plan(ctx, session)
        may = web.may(roles.RECORD) and found.state is ReviewState.open
        return {
            "review": found,
            "may_record": may,
            "may_finish": web.may(roles.RECORD),  # open findings stay changeable once complete
            "may_complete": may and all(i.status is ItemStatus.reviewed for i in found.items),
            "role": roles.RECORD,
            "people": sorted(people),
            "today": now.date(),
        }

    return values


def _valid(model: type[Body], given: dict[str, str]) -> Body:
    try:
        return model.model_validate(given)
    except ValidationError as exc:
        raise Invalid(problems(exc, LABELS)) from None


def _domain(call: Callable[[], T], *, lookups: bool = False) -> T:
    """A refusal of what was typed is shown beside its form; an unknown review (or area, unless
    ``lookups``: the area or review was chosen in the form, not named by the path) is a 404."""
    try:
        return call()
    except ReviewNotFound as exc:
        if lookups:
            raise Invalid(str(exc)) from None
        raise
    except ReviewError as exc:
        raise Invalid(str(exc)) from None


def _plan(ctx: AppContext, session: Session) -> tuple[list[Review], set[str]]:
    loaded = ctx.engine.loaded if ctx.engine is not None else None
    return planned.reviews_and_people(loaded.plan if loaded else None, session)


def _back(review_id: int) -> str:
    return f"/reviews/{review_id}"
