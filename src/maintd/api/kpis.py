"""``GET /api/v1/kpis``: every KPI over a period, with how each was computed (viewers read)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query

from maintd.api.deps import AppContext, context, require
from maintd.auth import Principal, Role
from maintd.kpi.model import Report
from maintd.kpi.report import GROUPS, compute
from maintd.plan.types import parse_duration

Ctx = Annotated[AppContext, Depends(context)]
Viewer = Annotated[Principal, Depends(require(Role.viewer))]


def router() -> APIRouter:
    r = APIRouter(tags=["kpis"])

    @r.get("/kpis", summary="KPIs over a period, each with its target and how it was computed")
    def kpis(
        ctx: Ctx,
        _: Viewer,
        period: Annotated[
            str, Query(description="how far back from `end`: 7d, 30d, 12w", max_length=32)
        ] = "30d",
        end: Annotated[
            datetime | None, Query(description="the period's end (default: now), ISO 8601")
        ] = None,
        group: Annotated[str | None, Query(pattern="^(" + "|".join(GROUPS) + ")$")] = None,
    ) -> Report:
        now = ctx.clock.now()
        if end is not None and end.tzinfo is None:
            raise HTTPException(422, "end needs a time zone, e.g. 2026-11-27T00:00:00Z")
        try:
            with ctx.store.read() as session:
                report = compute(session, end=end or now, period=parse_duration(period), now=now)
        except ValueError as exc:
            raise HTTPException(422, str(exc)) from None
        if group is not None:
            report.figures = [f for f in report.figures if f.group == group]
        return report

    return r
