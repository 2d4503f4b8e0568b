"""``GET /api/v1/slos``: the active plan's SLOs with error budget, burn rates and alerts (viewers read)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query

from maintd.api.deps import AppContext, context, require
from maintd.auth import Principal, Role
from maintd.slo.budget import SloStatus
from maintd.slo.stored import statuses

Ctx = Annotated[AppContext, Depends(context)]
Viewer = Annotated[Principal, Depends(require(Role.viewer))]


def router() -> APIRouter:
    r = APIRouter(tags=["slos"])

    @r.get("/slos", summary="SLOs: availability, error budget, burn rates over 5m to 3d, burning alerts")
    def slos(
        ctx: Ctx,
        _: Viewer,
        name: Annotated[str | None, Query(description="only this SLO", max_length=63)] = None,
        target: Annotated[
            str | None, Query(description="only the SLOs of this target", max_length=63)
        ] = None,
        burning: Annotated[bool | None, Query(description="only those paging or ticketing (or not)")] = None,
        at: Annotated[
            datetime | None, Query(description="evaluate at this time (default: now), ISO 8601")
        ] = None,
        limit: Annotated[int, Query(ge=1, le=500)] = 100,
        offset: Annotated[int, Query(ge=0, le=100_000)] = 0,
    ) -> list[SloStatus]:
        if at is not None and at.tzinfo is None:
            raise HTTPException(422, "at needs a time zone, e.g. 2026-11-27T00:00:00Z")
        with ctx.store.read() as session:
            found = statuses(session, at or ctx.clock.now(), name=name)
        found = [
            s
            for s in found
            if (target is None or s.target == target) and (burning is None or (s.page or s.ticket) == burning)
        ]
        return found[offset : offset + limit]

    return r
