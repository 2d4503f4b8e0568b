"""Alerts in: maintd's own JSON, Alertmanager's webhook and PagerDuty's Events API v2.

Every route goes the same way: content type → body (limited while it streams) → JSON →
the format's model → sender and rate limit → ``ingest`` in a write transaction shared with
the requests queued beside it (``maintd.incidents.committer``) → the answer, after the
commit. A request is stored whole or not at all, and a sender that gets no 2xx sends
again: a repeated delivery updates the open alert, it never duplicates it. The checks and
the refusals' answers are maintd.alerts.admission's, shared with ``maintd intake``.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from pydantic import BaseModel
from sqlalchemy.orm import Session
from starlette.routing import request_response

from maintd.alerts import admission
from maintd.alerts.admission import (
    ALERTMANAGER_MAX_BODY,
    NATIVE_MAX_BODY,
    PAGERDUTY_MAX_BODY,
    Rejected,
    Sender,
    read,
)
from maintd.alerts.formats import alertmanager, native, pagerduty
from maintd.alerts.formats.alertmanager import AlertmanagerWebhook
from maintd.alerts.formats.native import NativeAlerts
from maintd.alerts.formats.pagerduty import PagerDutyEvent
from maintd.alerts.model import AlertIn
from maintd.api import problems
from maintd.api.deps import AppContext, poke
from maintd.api.ratelimit import RateLimiter
from maintd.api.senders import Senders
from maintd.auth import Role
from maintd.incidents.committer import AlertRequest, GroupCommitter
from maintd.incidents.pipeline import Delivery, ingest_requests
from maintd.plan.incidents import IncidentSettings
from maintd.settings import Settings

__all__ = ["ALERTMANAGER_MAX_BODY", "NATIVE_MAX_BODY", "PAGERDUTY_MAX_BODY", "Rejected", "Sender", "install"]


class DeliveryView(BaseModel):
    fingerprint: str
    status: str
    outcome: str  # created, updated, resolved, acknowledged, dropped, muted
    alert_id: int | None
    incident_id: int | None


View = dict[str, Any]  # a DeliveryView's fields


class Accepted(BaseModel):
    """What became of each alert, in the order sent; stored before this answer."""

    alerts: list[DeliveryView]


class PagerDutyAnswer(BaseModel):
    status: str
    message: str
    dedup_key: str | None = None


class _PlainRoute(APIRoute):
    """A route FastAPI documents but does not drive: the endpoint gets the bare ``Request``.

    FastAPI's per-request machinery (dependency resolution, its request wrapper and the
    nested routers' matching) cost about a fifth of an alert request's CPU; these endpoints
    read, check and answer the request themselves, so they need none of it.
    """

    def __init__(self, path: str, endpoint: Callable[[Request], Awaitable[Response]], **kwargs: Any) -> None:
        super().__init__(path, endpoint, methods=["POST"], tags=["alerts"], **kwargs)
        self.app = request_response(endpoint)


# The paths of these routes: they bound their bodies themselves (maintd.api.bodylimit leaves them).
OWN_LIMITS = ("/api/v1/alerts", "/integrations/alertmanager/", "/v2/enqueue")


def install(app: FastAPI, ctx: AppContext) -> Senders:
    """Add the alert routes to ``app``, first, so that they are matched before any other route."""
    settings = ctx.engine.settings if ctx.engine is not None else None
    limiter = _limiter(settings)
    senders = Senders(ctx.store, ctx.clock)
    committer = GroupCommitter(ctx.store, functools.partial(_ingest, ctx))

    async def post_alerts(request: Request) -> Response:
        try:
            sender = await _native_sender(request, senders)
            _limit(ctx, limiter, sender.actor)
            batch = read(NativeAlerts, await _body(request, NATIVE_MAX_BODY))
        except Rejected as rejected:
            return _problem(ctx, "native", rejected)
        alerts = native.to_alerts(batch, integration=sender.integration)
        return _accepted(await _accept(ctx, committer, alerts, sender.actor))

    async def post_alertmanager(request: Request) -> Response:
        try:
            found = admission.alertmanager_key(
                await senders.integration(request.path_params["integration_key"])
            )
            _limit(ctx, limiter, found.actor)
            webhook = read(AlertmanagerWebhook, await _body(request, ALERTMANAGER_MAX_BODY))
        except Rejected as rejected:
            return _problem(ctx, "alertmanager", rejected)
        alerts = alertmanager.to_alerts(webhook, integration=found.name)
        alertmanager.warn_of_oddities(webhook, alerts, found.name)
        return _accepted(await _accept(ctx, committer, alerts, found.actor))

    async def enqueue(request: Request) -> Response:
        try:
            event = read(PagerDutyEvent, await _body(request, PAGERDUTY_MAX_BODY))
            found = admission.pagerduty_key(await senders.integration(event.routing_key))
            _limit(ctx, limiter, found.actor)
        except Rejected as rejected:
            return _pagerduty_error(ctx, rejected)
        dedup_key = pagerduty.dedup_key_of(event)
        alert = pagerduty.to_alert(event, integration=found.name, dedup_key=dedup_key)
        await _accept(ctx, committer, [alert], found.actor)
        return JSONResponse(
            PagerDutyAnswer(status="success", message="Event processed", dedup_key=dedup_key).model_dump(),
            status_code=202,
        )

    routes = [
        _PlainRoute(
            "/api/v1/alerts",
            post_alerts,
            summary="Alerts in maintd's own JSON: a list of {labels, annotations, status, severity, ...}",
            response_model=Accepted,
            responses=_problem_responses(401, 403, 400, 413, 415, 422, 429),
            openapi_extra=_body_doc(NativeAlerts),
        ),
        _PlainRoute(
            "/integrations/alertmanager/{integration_key}",
            post_alertmanager,
            summary="Prometheus Alertmanager's webhook (version 4); the key of an alertmanager integration",
            response_model=Accepted,
            responses=_problem_responses(404, 400, 413, 415, 422, 429),
            openapi_extra={**_body_doc(AlertmanagerWebhook), "parameters": [_KEY_PARAMETER]},
        ),
        _PlainRoute(
            "/v2/enqueue",
            enqueue,
            summary="PagerDuty Events API v2: routing_key is the key of a pagerduty integration",
            status_code=202,
            response_model=PagerDutyAnswer,
            responses={
                400: {"description": '{"status": "invalid event", "message": ..., "errors": [...]}'},
                413: {"description": "the body is over 512 KB"},
                429: {"description": "over the integration's rate limit; see Retry-After"},
            },
            openapi_extra=_body_doc(PagerDutyEvent),
        ),
    ]
    app.router.routes[0:0] = routes
    app.state.senders = senders  # for whatever disables a key or revokes a token in this process
    return senders


_KEY_PARAMETER = {
    "name": "integration_key",
    "in": "path",
    "required": True,
    "schema": {"type": "string", "title": "Integration Key"},
}


# -- the steps every route takes ----------------------------------------------


async def _native_sender(request: Request, senders: Senders) -> Sender:
    """An API token of a responder (or above), or the key of a native integration."""
    authorization = request.headers.get("authorization", "")
    key = admission.integration_key(authorization)
    if key is not None:
        return admission.native_integration(await senders.integration(key))
    principal = await senders.principal(authorization, Role.responder)
    return Sender(principal.actor, None)


def _limiter(settings: Settings | None) -> RateLimiter:
    defaults = Settings(database_url="")
    rate = settings.ingest_rate if settings else defaults.ingest_rate
    burst = settings.ingest_burst if settings else defaults.ingest_burst
    return RateLimiter(rate, burst)


def _limit(ctx: AppContext, limiter: RateLimiter, key: str) -> None:
    wait = limiter.take(key, ctx.clock.now())
    if wait > 0:
        raise admission.over_rate(key, wait, limiter.rate, limiter.burst)


async def _body(request: Request, limit: int) -> bytearray:
    """The body, refused early when it is not JSON or longer than ``limit`` bytes."""
    headers = request.headers
    admission.check_headers(headers.get("content-type", ""), headers.get("content-length"), limit)
    body = bytearray()
    async for chunk in request.stream():  # chunked bodies have no Content-Length: count as they come
        body += chunk
        if len(body) > limit:
            raise admission.too_long(limit)
    return body


async def _accept(
    ctx: AppContext, committer: GroupCommitter[list[View]], alerts: list[AlertIn], actor: str
) -> list[View]:
    """Queue the deliveries for the next shared transaction; this returns only after its commit."""
    views = await committer.submit(alerts, actor=actor)
    for alert, view in zip(alerts, views, strict=True):
        ctx.metrics.alerts_received.labels(alert.source, view["outcome"]).inc()
    if any(view["outcome"] in _CHANGES_INCIDENTS for view in views):
        poke(ctx)  # committed: a new incident's first page is due now, a resolution queues notices
    return views


_CHANGES_INCIDENTS = frozenset({"created", "unmuted", "resolved", "acknowledged"})


def _accepted(views: list[View]) -> JSONResponse:
    # Built here rather than by FastAPI from ``Accepted`` (which still documents it): FastAPI
    # would validate and serialise the answer again, 175 µs for 100 alerts against 66 µs here.
    return JSONResponse({"alerts": views})


def _ingest(ctx: AppContext, session: Session, requests: list[AlertRequest]) -> list[list[View]]:
    """Queued requests' alerts through the pipeline, in the committer's transaction (flushes only)."""
    now = ctx.clock.now()
    engine = ctx.engine
    # A new incident's first page (group_wait 0) goes out on this commit, not a tick later: its
    # step is inserted already claimed and fired in this transaction.
    with engine.firing_in_place(session, now) if engine is not None else contextlib.nullcontext():
        done = ingest_requests(
            session,
            [(r.alerts, r.actor) for r in requests],
            now=now,
            received=[r.received_at for r in requests],
            settings=_incident_settings(ctx),
            maintenance_tasks=engine.maintenance_tasks if engine is not None else (),
        )
    return [[_view(d) for d in deliveries] for deliveries in done]


def _incident_settings(ctx: AppContext) -> IncidentSettings:
    if ctx.engine is not None and ctx.engine.loaded is not None:
        return ctx.engine.loaded.plan.incidents
    return IncidentSettings()


def _view(d: Delivery) -> View:
    """A ``DeliveryView`` as the answer's JSON."""
    incident = d.incident.id if d.incident is not None else (d.row.incident_id if d.row else None)
    return {
        "fingerprint": d.alert.fingerprint,
        "status": d.alert.status.value,
        "outcome": d.outcome,
        "alert_id": d.row.id if d.row is not None else None,
        "incident_id": incident,
    }


# -- answers ------------------------------------------------------------------


def _problem(ctx: AppContext, source: str, rejected: Rejected) -> JSONResponse:
    ctx.metrics.alerts_received.labels(source, admission.outcome(rejected)).inc()
    status, body, headers = admission.problem(rejected)
    return JSONResponse(body, status_code=status, media_type=problems.MEDIA_TYPE, headers=headers)


def _pagerduty_error(ctx: AppContext, rejected: Rejected) -> JSONResponse:
    ctx.metrics.alerts_received.labels("pagerduty", admission.outcome(rejected)).inc()
    status, body, headers = admission.pagerduty_error(rejected)
    return JSONResponse(body, status_code=status, headers=headers or None)


def _problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    content: dict[str, Any] = {problems.MEDIA_TYPE: {}}
    what = {
        400: "malformed JSON, an empty body or a bad Content-Length",
        401: "no or unknown token or integration key",
        403: "the token's role is below responder, or the key is not a native integration's",
        404: "unknown or disabled integration key, or one of another kind",
        413: "the body is over the route's limit",
        415: "the Content-Type is not application/json",
        422: "the body is not this format: `errors` name each field",
        429: "over the sender's rate limit; see Retry-After",
    }
    return {s: {"description": what[s], "content": content} for s in statuses}


def _body_doc(model: type[BaseModel]) -> dict[str, Any]:
    """The request body's schema for OpenAPI (these routes read the body themselves)."""
    schema = model.model_json_schema()
    defs = schema.pop("$defs", {})

    def inline(node: Any) -> Any:
        if isinstance(node, dict):
            if "$ref" in node:
                return inline(defs[node["$ref"].rsplit("/", 1)[1]])
            return {k: inline(v) for k, v in node.items()}
        if isinstance(node, list):
            return [inline(v) for v in node]
        return node

    return {"requestBody": {"required": True, "content": {"application/json": {"schema": inline(schema)}}}}
