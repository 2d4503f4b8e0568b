"""Recurring reviews (the quarterly architecture review): thin routes over maintd.reviews.

Roles (maintd.reviews.roles, shared with the dashboard): viewers read; a team lead (or above)
opens a review, records areas reviewed and findings, changes findings and completes the review.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, Query
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session

from maintd import views
from maintd.api.deps import MAX_ID, AppContext, Id, Offset, context, require
from maintd.auth import Principal
from maintd.plan.reviews import Review
from maintd.reviews import (
    FindingStatus,
    FindingView,
    ReviewBrief,
    ReviewError,
    ReviewNotFound,
    ReviewState,
    ReviewView,
    findings,
    planned,
    roles,
    service,
)
from maintd.reviews.model import finding_view
from maintd.reviews.periods import parse

Ctx = Annotated[AppContext, Depends(context)]
Viewer = Annotated[Principal, Depends(require(roles.READ))]
TeamLead = Annotated[Principal, Depends(require(roles.RECORD))]
Area = Annotated[str, Path(min_length=1, max_length=63, description="an area of the review's checklist")]

Responses = dict[int | str, dict[str, Any]]
NOT_FOUND: Responses = {404: {"description": "no such review, area or finding"}}
REFUSED: Responses = {**NOT_FOUND, 409: {"description": "the review's state or rules refuse it"}}


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class StartBody(_Body):
    name: str = Field(min_length=1, max_length=63, description="a review of the active plan")
    period: str | None = Field(
        default=None,
        max_length=16,
        description="2026-Q4 (quarterly), 2026-11, 2026-H2, 2026; the current one",
    )


class CheckBody(_Body):
    notes: str = Field(min_length=1, max_length=service.NOTES_MAX, description="what was reviewed and seen")


class NoteBody(_Body):
    note: str = Field(default="", max_length=4000, description="a closing word, for the record")


class FindingBody(_Body):
    area: str = Field(min_length=1, max_length=63, description="the area it was found in")
    title: str = Field(min_length=1, max_length=findings.TITLE_MAX, description="what is to be done")
    owner: str = Field(min_length=1, max_length=63, description="a person of the active plan")
    due_on: date = Field(description="due by the end of this day (UTC)")
    detail: str = Field(
        default="", max_length=findings.DETAIL_MAX, description="what was found, why it matters"
    )


class FindingChange(_Body):
    title: str | None = Field(default=None, min_length=1, max_length=findings.TITLE_MAX)
    owner: str | None = Field(default=None, min_length=1, max_length=63)
    due_on: date | None = None
    status: FindingStatus | None = Field(default=None, description="done or cancelled: final")


def router() -> APIRouter:
    r = APIRouter(tags=["reviews"])

    @r.get("/reviews", summary="Reviews, newest period first, with their progress")
    def list_reviews(
        ctx: Ctx,
        _: Viewer,
        state: ReviewState | None = None,
        name: Annotated[str | None, Query(max_length=63)] = None,
        limit: Annotated[int, Query(ge=1, le=views.MAX_LIMIT)] = 50,
        offset: Offset = 0,
    ) -> list[ReviewBrief]:
        with ctx.store.read() as session:
            return service.list_reviews(session, state=state, name=name, limit=limit, offset=offset)

    @r.post(
        "/reviews", status_code=201, summary="Open a review of the plan now, on demand", responses=REFUSED
    )
    def start(body: StartBody, ctx: Ctx, who: TeamLead) -> ReviewView:
        with _answers(), ctx.store.write() as session:
            reviews, _people = _plan(ctx, session)
            review = service.plan_review(reviews, body.name)
            try:
                period = parse(review.cadence, body.period) if body.period else None
            except ValueError as exc:
                raise ReviewError(str(exc)) from None
            row = service.start(session, reviews=reviews, name=body.name, actor=who.actor,
                                now=ctx.clock.now(), period=period)  # fmt: skip
            return service.get_review(session, review_id=row.id)

    @r.get("/reviews/findings", summary="Findings of every review, earliest due first")
    def list_findings(
        ctx: Ctx,
        _: Viewer,
        status: FindingStatus | None = None,
        owner: Annotated[str | None, Query(max_length=63)] = None,
        review: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
        overdue: Annotated[bool, Query(description="only open ones past their due day")] = False,
        limit: Annotated[int, Query(ge=1, le=views.MAX_LIMIT)] = 100,
        offset: Offset = 0,
    ) -> list[FindingView]:
        at = ctx.clock.now() if overdue else None
        with ctx.store.read() as session:
            rows = findings.list_findings(session, status=status, owner=owner, review_id=review,
                                          overdue_at=at, limit=limit, offset=offset)  # fmt: skip
            return [finding_view(f) for f in rows]

    @r.patch(
        "/reviews/findings/{finding_id}",
        summary="Change a finding: title, owner, due date, or status done / cancelled",
        responses=REFUSED,
    )
    def change_finding(finding_id: Id, body: FindingChange, ctx: Ctx, who: TeamLead) -> FindingView:
        with _answers(), ctx.store.write() as session:
            row = findings.get_finding(session, finding_id=finding_id)
            reviews, people = _plan(ctx, session)
            settings = planned.settings_of(reviews, service.load(session, row.review_id).name)
            row = findings.update_finding(
                session, finding_id=finding_id, people=people, settings=settings, actor=who.actor,
                now=ctx.clock.now(), title=body.title, owner=body.owner, due_on=body.due_on,
                status=body.status,
            )  # fmt: skip
            return finding_view(row)

    @r.get("/reviews/{review_id}", summary="A review's checklist and findings", responses=NOT_FOUND)
    def get(review_id: Id, ctx: Ctx, _: Viewer) -> ReviewView:
        with _answers(), ctx.store.read() as session:
            return service.get_review(session, review_id=review_id)

    @r.post(
        "/reviews/{review_id}/areas/{area}",
        summary="Record an area reviewed, with notes (again: the notes are replaced)",
        responses=REFUSED,
    )
    def check(review_id: Id, area: Area, body: CheckBody, ctx: Ctx, who: TeamLead) -> ReviewView:
        with _answers(), ctx.store.write() as session:
            service.check(session, review_id=review_id, area=area, notes=body.notes, actor=who.actor,
                          now=ctx.clock.now())  # fmt: skip
            return service.get_review(session, review_id=review_id)

    @r.post(
        "/reviews/{review_id}/findings",
        status_code=201,
        summary="Record a finding of an open review as an action item (its owner is reminded)",
        responses=REFUSED,
    )
    def add_finding(review_id: Id, body: FindingBody, ctx: Ctx, who: TeamLead) -> FindingView:
        with _answers(), ctx.store.write() as session:
            reviews, people = _plan(ctx, session)
            settings = planned.settings_of(reviews, service.load(session, review_id).name)
            row = findings.add_finding(
                session, review_id=review_id, area=body.area, title=body.title, owner=body.owner,
                due_on=body.due_on, detail=body.detail, people=people, settings=settings, actor=who.actor,
                now=ctx.clock.now(),
            )  # fmt: skip
            return finding_view(row)

    @r.post(
        "/reviews/{review_id}/complete",
        summary="Complete a review: refused while an area is unreviewed; final",
        responses=REFUSED,
    )
    def complete(review_id: Id, ctx: Ctx, who: TeamLead, body: NoteBody | None = None) -> ReviewView:
        with _answers(), ctx.store.write() as session:
            service.complete(session, review_id=review_id, actor=who.actor, now=ctx.clock.now(),
                             note=body.note if body else "")  # fmt: skip
            return service.get_review(session, review_id=review_id)

    return r


def _plan(ctx: AppContext, session: Session) -> tuple[list[Review], set[str]]:
    loaded = ctx.engine.loaded if ctx.engine is not None else None
    return planned.reviews_and_people(loaded.plan if loaded else None, session)


@contextlib.contextmanager
def _answers() -> Iterator[None]:
    """Domain refusals become problem responses: unknown → 404, not allowed now → 409."""
    try:
        yield
    except ReviewNotFound as exc:
        raise HTTPException(404, str(exc)) from None
    except ReviewError as exc:
        raise HTTPException(409, str(exc)) from None
