"""Remediations: thin routes over maintd.remediation.service.

Roles: viewers read; responders approve or deny an execution waiting for approval and reset
a playbook's breaker. An approved execution runs at the engine's next pass (poked at once).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query
from pydantic import BaseModel, ConfigDict, Field

from maintd import views
from maintd.api.deps import AllLimit, AppContext, Id, IdFilter, Offset, context, page, poke, require
from maintd.auth import Principal, Role
from maintd.remediation import circuits, service
from maintd.remediation.guardrails import State
from maintd.remediation.service import BreakerView, RemediationView

Ctx = Annotated[AppContext, Depends(context)]
Viewer = Annotated[Principal, Depends(require(Role.viewer))]
Responder = Annotated[Principal, Depends(require(Role.responder))]

Responses = dict[int | str, dict[str, Any]]
NOT_FOUND: Responses = {404: {"description": "no such remediation or breaker"}}
REFUSED: Responses = {**NOT_FOUND, 409: {"description": "it is not awaiting approval"}}


class NoteBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    note: str = Field(default="", max_length=4000, description="why, for the timeline")


class CircuitView(BaseModel):
    name: str
    open_until: datetime
    opened_at: datetime
    reason: str


def router() -> APIRouter:
    r = APIRouter(tags=["remediation"])

    @r.get("/remediations", summary="Remediations, newest first: decisions and executions")
    def list_remediations(
        ctx: Ctx,
        _: Viewer,
        state: State | None = None,
        playbook: str | None = None,
        incident: IdFilter = None,
        limit: Annotated[int, Query(ge=1, le=views.MAX_LIMIT)] = 50,
        offset: Offset = 0,
    ) -> list[RemediationView]:
        with ctx.store.read() as session:
            rows = service.list_remediations(
                session, state=state, playbook=playbook, incident_id=incident, limit=limit, offset=offset
            )
            return [service.view(row) for row in rows]

    @r.get("/remediations/breakers", summary="Each playbook's failures in a row and its breaker")
    def list_breakers(ctx: Ctx, _: Viewer, limit: AllLimit = None, offset: Offset = 0) -> list[BreakerView]:
        with ctx.store.read() as session:
            found = page(service.breakers(session), limit, offset)
            return [BreakerView.model_validate(b, from_attributes=True) for b in found]

    @r.get("/remediations/circuits", summary="Circuit breakers open now (the circuit_breaker action's)")
    def list_circuits(ctx: Ctx, _: Viewer, limit: AllLimit = None, offset: Offset = 0) -> list[CircuitView]:
        with ctx.store.read() as session:
            found = page(circuits.open_circuits(session, ctx.clock.now()), limit, offset)
            return [CircuitView.model_validate(c, from_attributes=True) for c in found]

    @r.get("/remediations/{remediation_id}", summary="One remediation", responses=NOT_FOUND)
    def get_remediation(remediation_id: Id, ctx: Ctx, _: Viewer) -> RemediationView:
        with _answers(), ctx.store.read() as session:
            return service.view(service.get(session, remediation_id=remediation_id))

    @r.post(
        "/remediations/{remediation_id}/approve",
        summary="Approve an execution waiting for approval",
        responses=REFUSED,
    )
    def approve(
        remediation_id: Id, ctx: Ctx, who: Responder, body: NoteBody | None = None
    ) -> RemediationView:
        note = body.note if body else ""
        with _answers(), ctx.store.write() as session:
            row = service.approve(
                session, remediation_id=remediation_id, actor=who.actor, now=ctx.clock.now(), note=note
            )
            found = service.view(row)
        poke(ctx)
        return found

    @r.post(
        "/remediations/{remediation_id}/deny",
        summary="Deny an execution waiting for approval",
        responses=REFUSED,
    )
    def deny(remediation_id: Id, ctx: Ctx, who: Responder, body: NoteBody | None = None) -> RemediationView:
        note = body.note if body else ""
        with _answers(), ctx.store.write() as session:
            row = service.deny(
                session, remediation_id=remediation_id, actor=who.actor, now=ctx.clock.now(), note=note
            )
            return service.view(row)

    @r.post(
        "/remediations/breakers/{playbook}/reset", summary="Close a playbook's breaker", responses=NOT_FOUND
    )
    def reset_breaker(playbook: str, ctx: Ctx, who: Responder) -> BreakerView:
        with _answers(), ctx.store.write() as session:
            breaker = service.reset_breaker(session, playbook=playbook, actor=who.actor, now=ctx.clock.now())
            return BreakerView.model_validate(breaker, from_attributes=True)

    return r


@contextlib.contextmanager
def _answers() -> Iterator[None]:
    """Domain refusals become problem responses: unknown → 404, not allowed now → 409."""
    try:
        yield
    except service.RemediationNotFound as exc:
        raise HTTPException(404, str(exc)) from None
    except service.RemediationError as exc:
        raise HTTPException(409, str(exc)) from None
