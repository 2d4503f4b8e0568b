"""``GET /api/v1/capacity``: each series' growth, projections and time to its limit (viewers read)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query

from maintd.api.deps import AppContext, context, require
from maintd.auth import Principal, Role
from maintd.capacity.model import CapacityReport
from maintd.capacity.review import review
from maintd.plan.types import parse_duration

Ctx = Annotated[AppContext, Depends(context)]
Viewer = Annotated[Principal, Depends(require(Role.viewer))]


def router() -> APIRouter:
    r = APIRouter(tags=["capacity"])

    @r.get("/capacity", summary="Capacity: growth, 3/6/12-month projections and when each series is full")
    def capacity(
        ctx: Ctx,
        _: Viewer,
        task: Annotated[str | None, Query(max_length=63)] = None,
        target: Annotated[str | None, Query(max_length=63)] = None,
        metric: Annotated[str | None, Query(max_length=255, description="any metric a run recorded")] = None,
        limit: Annotated[float | None, Query(description="the limit for every selected series")] = None,
        history: Annotated[
            str, Query(description="how far back the runs are read: 90d, 52w", max_length=32)
        ] = "365d",
    ) -> CapacityReport:
        try:
            span = parse_duration(history)
            with ctx.store.read() as session:
                return review(
                    session, now=ctx.clock.now(), history=span, task=task, target=target, metric=metric,
                    limit=limit,
                )  # fmt: skip
        except ValueError as exc:
            raise HTTPException(422, str(exc)) from None

    return r
