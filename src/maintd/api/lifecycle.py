"""Lifecycle: thin routes over maintd.lifecycle (inventory, documentation registry, training matrix).

Roles: viewers read; responders record a document review or a training completed; moving a
component to another stage or version needs a team lead.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session

from maintd.api.deps import AllLimit, AppContext, Offset, context, page, poke, require
from maintd.auth import Principal, Role
from maintd.lifecycle import documents, inventory, service, training
from maintd.lifecycle.records import Catalog, LifecycleError, NotFound
from maintd.plan.lifecycle import Stage

Ctx = Annotated[AppContext, Depends(context)]
Viewer = Annotated[Principal, Depends(require(Role.viewer))]
Responder = Annotated[Principal, Depends(require(Role.responder))]
TeamLead = Annotated[Principal, Depends(require(Role.team_lead))]

Responses = dict[int | str, dict[str, Any]]
REFUSED: Responses = {
    404: {"description": "no such component, document, training or person in the active plan"},
    409: {"description": "the lifecycle rules refuse it"},
}


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TransitionBody(_Body):
    to: Stage | None = Field(default=None, description="the next stage; none: the version changes only")
    version: str | None = Field(default=None, max_length=64, description="the version now in use")
    released: date | None = Field(
        default=None, description="its release date, when the plan does not list it"
    )
    note: str = Field(default="", max_length=4000, description="why, for the audit trail")


class ReviewBody(_Body):
    note: str = Field(default="", max_length=4000, description="what was checked or changed")


class CompletionBody(_Body):
    person: str = Field(min_length=1, max_length=63, description="a person of the active plan")
    training: str = Field(min_length=1, max_length=63, description="a training the matrix requires of them")
    completed_on: date | None = Field(default=None, description="when; none: now")
    note: str = Field(default="", max_length=4000)


def router() -> APIRouter:
    r = APIRouter()

    @r.get("/lifecycle/components", tags=["lifecycle"], summary="Components: stage, version in use, support")
    def components(
        ctx: Ctx,
        _: Viewer,
        stage: Annotated[
            str | None, Query(max_length=128, description="only the components at this stage")
        ] = None,
        owner: Annotated[
            str | None, Query(max_length=128, description="only the components of this person")
        ] = None,
        limit: AllLimit = None,
        offset: Offset = 0,
    ) -> list[inventory.ComponentState]:
        with _answers(), ctx.store.read() as session:
            found = inventory.states(session, _catalog(ctx, session), ctx.clock.now())
        return page(
            [c for c in found if stage in (None, c.stage) and owner in (None, c.owner)], limit, offset
        )

    @r.post(
        "/lifecycle/components/{name}/transition",
        tags=["lifecycle"],
        summary="Move a component to its next stage and/or another version (team lead)",
        responses=REFUSED,
    )
    def transition(name: str, body: TransitionBody, ctx: Ctx, who: TeamLead) -> inventory.ComponentState:
        with _answers(), ctx.store.write() as session:
            found = service.transition(
                session,
                _catalog(ctx, session),
                component=name,
                to=body.to,
                version=body.version,
                released=body.released,
                note=body.note,
                actor=who.actor,
                now=ctx.clock.now(),
            )
        poke(ctx)
        return found

    @r.get(
        "/lifecycle/review",
        tags=["lifecycle"],
        summary="The annual technology review: live components by area, soonest end of support first",
    )
    def review(
        ctx: Ctx, _: Viewer, limit: AllLimit = None, offset: Offset = 0
    ) -> list[inventory.ComponentState]:
        with _answers(), ctx.store.read() as session:
            return page(
                inventory.review_list(session, _catalog(ctx, session), ctx.clock.now()), limit, offset
            )

    @r.get("/docs", tags=["docs"], summary="The documentation registry: owner, cadence, last review, stale")
    def docs(
        ctx: Ctx,
        _: Viewer,
        kind: Annotated[
            str | None,
            Query(max_length=128, description="only the documents of this kind (runbook, architecture, ...)"),
        ] = None,
        owner: Annotated[
            str | None, Query(max_length=128, description="only the documents of this person")
        ] = None,
        limit: AllLimit = None,
        offset: Offset = 0,
    ) -> list[documents.DocStatus]:
        with _answers(), ctx.store.read() as session:
            found = documents.statuses(session, _catalog(ctx, session), until=ctx.clock.now())
        return page([d for d in found if kind in (None, d.kind) and owner in (None, d.owner)], limit, offset)

    @r.get("/docs/stale", tags=["docs"], summary="Documents needing a review, stale longest first")
    def stale(
        ctx: Ctx,
        _: Viewer,
        owner: Annotated[
            str | None, Query(max_length=128, description="only the documents of this person")
        ] = None,
        limit: AllLimit = None,
        offset: Offset = 0,
    ) -> list[documents.DocStatus]:
        with _answers(), ctx.store.read() as session:
            found = documents.statuses(session, _catalog(ctx, session), until=ctx.clock.now())
        stale = sorted((d for d in found if d.stale_since), key=lambda d: (d.stale_since, d.name))
        return page([d for d in stale if owner in (None, d.owner)], limit, offset)

    @r.post(
        "/docs/{name}/reviewed", tags=["docs"], summary="Record a review of a document", responses=REFUSED
    )
    def reviewed(name: str, ctx: Ctx, who: Responder, body: ReviewBody | None = None) -> documents.DocStatus:
        with _answers(), ctx.store.write() as session:
            found = service.reviewed(
                session,
                _catalog(ctx, session),
                document=name,
                note=body.note if body else "",
                actor=who.actor,
                now=ctx.clock.now(),
            )
        poke(ctx)
        return found

    @r.get("/training/matrix", tags=["training"], summary="Role → required training → frequency, with people")
    def matrix(
        ctx: Ctx,
        _: Viewer,
        role: Annotated[str | None, Query(max_length=128, description="only the rows of this role")] = None,
        limit: AllLimit = None,
        offset: Offset = 0,
    ) -> list[training.MatrixRow]:
        with _answers(), ctx.store.read() as session:
            found = training.matrix(_catalog(ctx, session))
        return page([row for row in found if role in (None, row.role)], limit, offset)

    @r.get("/training/overdue", tags=["training"], summary="Required trainings not current, oldest due first")
    def overdue(
        ctx: Ctx,
        _: Viewer,
        person: Annotated[str | None, Query(max_length=128, description="only this person")] = None,
        limit: AllLimit = None,
        offset: Offset = 0,
    ) -> list[training.TrainingStatus]:
        now = ctx.clock.now()
        with _answers(), ctx.store.read() as session:
            found = training.statuses(session, _catalog(ctx, session), at=now)
        late = sorted((s for s in found if not s.current), key=lambda s: (s.due_at or now, s.person))
        return page([s for s in late if person in (None, s.person)], limit, offset)

    @r.post(
        "/training/completions",
        tags=["training"],
        status_code=201,
        summary="Record a training completed by a person",
        responses=REFUSED,
    )
    def completed(body: CompletionBody, ctx: Ctx, who: Responder) -> training.TrainingStatus:
        with _answers(), ctx.store.write() as session:
            found = service.completed(
                session,
                _catalog(ctx, session),
                person=body.person,
                training_name=body.training,
                completed_on=body.completed_on,
                note=body.note,
                actor=who.actor,
                now=ctx.clock.now(),
            )
        poke(ctx)
        return found

    return r


def _catalog(ctx: AppContext, session: Session) -> Catalog:
    """The running plan's lifecycle sections, else the stored plan's."""
    loaded = ctx.engine.loaded if ctx.engine is not None else None
    return Catalog.of(loaded.plan) if loaded is not None else Catalog.stored(session)


@contextlib.contextmanager
def _answers() -> Iterator[None]:
    try:
        yield
    except NotFound as exc:
        raise HTTPException(404, str(exc)) from None
    except LifecycleError as exc:
        raise HTTPException(409, str(exc)) from None
