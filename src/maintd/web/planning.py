"""The forward-looking pages: capacity (growth, projections, when each series is full, with the
capacity room's own SVG charts) and the inventory (components' stages and support, documents due
for review, training due), each from one read session through the rooms' services."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from markupsafe import Markup
from sqlalchemy.orm import Session

from maintd.api.deps import AppContext
from maintd.capacity import chart, render
from maintd.capacity.review import review
from maintd.lifecycle import documents, inventory, training
from maintd.lifecycle.records import Catalog
from maintd.web.auth import WebSession
from maintd.web.common import Ctx, show

CAPACITY_HISTORY = timedelta(days=365)


def router() -> APIRouter:
    r = APIRouter(include_in_schema=False)

    @r.get("/capacity")
    def capacity(request: Request, ctx: Ctx) -> Response:
        def values(session: Session, now: datetime, _: WebSession) -> dict[str, Any]:
            report = review(session, now=now, history=CAPACITY_HISTORY)
            return {
                "report": report,
                "columns": render.COLUMNS,
                "rows": [render.row(f) for f in report.forecasts],
                # chart.svg escapes every text it draws (the series label, amounts); the rest is numbers.
                "charts": [
                    (f, None if f.note or not f.history else Markup(chart.svg(f))) for f in report.forecasts
                ],
            }

        return show(request, ctx, "capacity.html", "/capacity", values)

    @r.get("/inventory")
    def inventory_page(request: Request, ctx: Ctx) -> Response:
        def values(session: Session, now: datetime, _: WebSession) -> dict[str, Any]:
            catalog = _catalog(ctx, session)
            return {
                "components": inventory.states(session, catalog, now),
                "documents": documents.statuses(session, catalog, until=now),
                "trainings": [t for t in training.statuses(session, catalog, at=now) if not t.current],
            }

        return show(request, ctx, "inventory.html", "/inventory", values)

    return r


def _catalog(ctx: AppContext, session: Session) -> Catalog:
    """The running plan's lifecycle sections, else the stored plan's."""
    loaded = ctx.engine.loaded if ctx.engine is not None else None
    return Catalog.of(loaded.plan) if loaded is not None else Catalog.stored(session)
