"""Change requests: thin routes over maintd.changes.

Roles: viewers read; responders create, execute and roll back changes; who may approve or
reject is the change type's approval matrix (a 403 says which roles it needs); overriding
the change freeze needs a director. Execution and rollback are steps the engine's change
worker runs: those routes answer 202 once the step is due.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session

from maintd import views
from maintd.api.deps import AppContext, Id, Offset, context, require
from maintd.auth import Principal, Role
from maintd.changes import orders, preview, service
from maintd.changes.model import (
    ChangeError,
    ChangeForbidden,
    ChangeFrozen,
    ChangeNotFound,
    ChangeRequest,
    ChangeState,
    ChangeView,
)
from maintd.plan.models import Plan
from maintd.store.models import ChangeRow

Ctx = Annotated[AppContext, Depends(context)]
Viewer = Annotated[Principal, Depends(require(Role.viewer))]
Responder = Annotated[Principal, Depends(require(Role.responder))]

Responses = dict[int | str, dict[str, Any]]
NOT_FOUND: Responses = {404: {"description": "no such change"}}
REFUSED: Responses = {
    **NOT_FOUND,
    403: {"description": "the person's role may not do this (the type's approvals, a freeze override)"},
    409: {"description": "the change's state, the plan or a change freeze refuses it"},
}


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class NoteBody(_Body):
    note: str = Field(default="", max_length=4000, description="why, for the timeline")


class SubmitBody(_Body):
    evidence: dict[str, str] = Field(default={}, description="evidence to add, by name: a run id or a link")


class ExecuteBody(_Body):
    override_freeze: str | None = Field(
        default=None, max_length=4000, description="a director's reason to execute despite the change freeze"
    )


class ChangeBrief(BaseModel):
    id: int
    type: str
    title: str
    state: str
    requested_by: str
    targets: list[str]
    created_at: datetime
    finished_at: datetime | None


class StepsView(BaseModel):
    steps: list[str] = Field(description="what executing the change would do, in order (a dry run)")


def router() -> APIRouter:
    r = APIRouter(tags=["changes"])

    @r.get("/changes", summary="Change requests, newest first")
    def list_changes(
        ctx: Ctx,
        _: Viewer,
        state: ChangeState | None = None,
        limit: Annotated[int, Query(ge=1, le=views.MAX_LIMIT)] = 50,
        offset: Offset = 0,
    ) -> list[ChangeBrief]:
        with ctx.store.read() as session:
            return [
                _brief(row) for row in service.list_changes(session, state=state, limit=limit, offset=offset)
            ]

    @r.post(
        "/changes", status_code=201, summary="Request a change (submitted unless draft)", responses=REFUSED
    )
    def create(body: ChangeRequest, ctx: Ctx, who: Responder) -> ChangeView:
        with _answers(), ctx.store.write() as session:
            plan = _plan(ctx, session)
            row = service.create(session, request=body, who=who, plan=plan, now=ctx.clock.now())
            return service.get(session, change_id=row.id, settings=plan.changes)

    @r.get(
        "/changes/{change_id}",
        summary="A change: its decisions, missing approvals, timeline",
        responses=NOT_FOUND,
    )
    def get(change_id: Id, ctx: Ctx, _: Viewer) -> ChangeView:
        with _answers(), ctx.store.read() as session:
            return service.get(session, change_id=change_id, settings=_plan(ctx, session).changes)

    @r.get("/changes/{change_id}/plan", summary="What executing it would do (a dry run)", responses=REFUSED)
    def steps(change_id: Id, ctx: Ctx, _: Viewer) -> StepsView:
        with _answers(), ctx.store.read() as session:
            return StepsView(steps=preview.plan_steps(service.load(session, change_id), _plan(ctx, session)))

    @r.post("/changes/{change_id}/submit", summary="Submit a draft with its evidence", responses=REFUSED)
    def submit(change_id: Id, ctx: Ctx, who: Responder, body: SubmitBody | None = None) -> ChangeView:
        with _answers(), ctx.store.write() as session:
            settings = _plan(ctx, session).changes
            evidence = body.evidence if body else {}
            service.submit(
                session,
                change_id=change_id,
                who=who,
                settings=settings,
                now=ctx.clock.now(),
                evidence=evidence,
            )
            return service.get(session, change_id=change_id, settings=settings)

    @r.post(
        "/changes/{change_id}/approve",
        summary="Approve (the type's matrix decides who may)",
        responses=REFUSED,
    )
    def approve(change_id: Id, ctx: Ctx, who: Responder, body: NoteBody | None = None) -> ChangeView:
        with _answers(), ctx.store.write() as session:
            settings = _plan(ctx, session).changes
            note = body.note if body else ""
            service.approve(
                session, change_id=change_id, who=who, settings=settings, now=ctx.clock.now(), note=note
            )
            return service.get(session, change_id=change_id, settings=settings)

    @r.post("/changes/{change_id}/reject", summary="Reject: final", responses=REFUSED)
    def reject(change_id: Id, ctx: Ctx, who: Responder, body: NoteBody | None = None) -> ChangeView:
        with _answers(), ctx.store.write() as session:
            settings = _plan(ctx, session).changes
            note = body.note if body else ""
            service.reject(
                session, change_id=change_id, who=who, settings=settings, now=ctx.clock.now(), note=note
            )
            return service.get(session, change_id=change_id, settings=settings)

    @r.post(
        "/changes/{change_id}/cancel", summary="Withdraw a change that has not started", responses=REFUSED
    )
    def cancel(change_id: Id, ctx: Ctx, who: Responder, body: NoteBody | None = None) -> ChangeView:
        with _answers(), ctx.store.write() as session:
            service.cancel(
                session, change_id=change_id, who=who, now=ctx.clock.now(), note=body.note if body else ""
            )
            return service.get(session, change_id=change_id)

    @r.post(
        "/changes/{change_id}/execute",
        status_code=202,
        summary="Execute an approved change: snapshot, pre-check, apply, watch, roll back if unhealthy",
        responses=REFUSED,
    )
    def execute(change_id: Id, ctx: Ctx, who: Responder, body: ExecuteBody | None = None) -> ChangeView:
        with _answers(), ctx.store.write() as session:
            settings = _plan(ctx, session).changes
            override = body.override_freeze if body else None
            orders.request_execution(
                session,
                change_id=change_id,
                who=who,
                settings=settings,
                now=ctx.clock.now(),
                override_reason=override,
            )
        _wake(ctx)
        with ctx.store.read() as session:
            return service.get(session, change_id=change_id)

    @r.post("/changes/{change_id}/rollback", status_code=202, summary="Roll back now", responses=REFUSED)
    def rollback(change_id: Id, ctx: Ctx, who: Responder, body: NoteBody | None = None) -> ChangeView:
        with _answers(), ctx.store.write() as session:
            reason = body.note if body else ""
            orders.request_rollback(session, change_id=change_id, who=who, now=ctx.clock.now(), reason=reason)
        _wake(ctx)
        with ctx.store.read() as session:
            return service.get(session, change_id=change_id)

    return r


def _brief(row: ChangeRow) -> ChangeBrief:
    return ChangeBrief.model_validate(row, from_attributes=True)


def _plan(ctx: AppContext, session: Session) -> Plan:
    """The running plan, else the plan ``maintd serve`` stored last."""
    loaded = ctx.engine.loaded if ctx.engine is not None else None
    if loaded is not None:
        return loaded.plan
    stored = views.active_plan(session)
    if stored is None:
        raise ChangeError("no plan is loaded: start maintd serve with a plan")
    return Plan.model_validate(stored.document)


def _wake(ctx: AppContext) -> None:
    """The step is due now: this process's change worker runs it at once."""
    if ctx.engine is not None:
        ctx.engine.changes.wake()


@contextlib.contextmanager
def _answers() -> Iterator[None]:
    """Domain refusals become problem responses: unknown → 404, not this role → 403, else → 409."""
    try:
        yield
    except ChangeNotFound as exc:
        raise HTTPException(404, str(exc)) from None
    except ChangeForbidden as exc:
        raise HTTPException(403, str(exc)) from None
    except (ChangeFrozen, ChangeError) as exc:
        raise HTTPException(409, str(exc)) from None
