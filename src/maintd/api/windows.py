"""Declared maintenance windows of the active plan: open now, and when each opens next."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query
from pydantic import TypeAdapter

from maintd import views
from maintd.alerts.muting import WindowStatus, window_status
from maintd.api.deps import AllLimit, AppContext, Offset, context, page, require
from maintd.auth import Principal, Role
from maintd.plan.incidents import MaintenanceWindow

Ctx = Annotated[AppContext, Depends(context)]
Viewer = Annotated[Principal, Depends(require(Role.viewer))]

_windows = TypeAdapter(list[MaintenanceWindow])


def router() -> APIRouter:
    r = APIRouter(tags=["alerts"])

    @r.get("/maintenance-windows", summary="Declared maintenance windows: open now, until when, and next")
    def maintenance_windows(
        ctx: Ctx,
        _: Viewer,
        open_now: Annotated[
            bool | None, Query(alias="open", description="only those open now (or not)")
        ] = None,
        limit: AllLimit = None,
        offset: Offset = 0,
    ) -> list[WindowStatus]:
        # Only this section of the active plan: no need to validate thousands of tasks.
        with ctx.store.read() as session:
            row = views.active_plan(session)
            document = row.document if row is not None else {}
        declared = _windows.validate_python(document.get("incidents", {}).get("maintenance_windows", []))
        now = ctx.clock.now()
        found = [window_status(w, now) for w in declared]
        return page([w for w in found if open_now in (None, w.open)], limit, offset)

    return r
