"""The notification log: what was sent to whom, on which channel, and every attempt (viewers read)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query

from maintd.api.deps import AppContext, Id, IdFilter, Offset, context, require
from maintd.auth import Principal, Role
from maintd.notify import log

Ctx = Annotated[AppContext, Depends(context)]
Viewer = Annotated[Principal, Depends(require(Role.viewer))]
STATUS_PATTERN = "^(" + "|".join(log.STATUSES) + ")$"


def router() -> APIRouter:
    r = APIRouter(tags=["notifications"])

    @r.get("/notifications", summary="Notifications, newest first")
    def list_notifications(
        ctx: Ctx,
        _: Viewer,
        incident: IdFilter = None,
        status: Annotated[str | None, Query(pattern=STATUS_PATTERN)] = None,
        limit: Annotated[int, Query(ge=1, le=log.MAX_LIMIT)] = 50,
        offset: Offset = 0,
    ) -> list[log.NotificationView]:
        with ctx.store.read() as session:
            return log.list_notifications(
                session, incident_id=incident, status=status, limit=limit, offset=offset
            )

    @r.get(
        "/notifications/{notification_id}",
        summary="One notification with its channels and every delivery attempt",
        responses={404: {"description": "no such notification"}},
    )
    def get_notification(notification_id: Id, ctx: Ctx, _: Viewer) -> log.NotificationDetail:
        with ctx.store.read() as session:
            found = log.get_notification(session, notification_id=notification_id)
        if found is None:
            raise HTTPException(404, f"no notification {notification_id}")
        return found

    return r
