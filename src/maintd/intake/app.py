"""The intake's HTTP side: a bare ASGI app with maintd serve's three alert routes, health and metrics.

Each alert route checks what maintd serve's route checks, in the same order, through the same
rules (maintd.alerts.admission), then journals the body as received and answers 202 once it is
committed: ``{"status": "queued", "alerts": N, "intake_id": ID}`` (PagerDuty: its own answer).
What becomes of each alert is the drain's business (maintd.intake.drain, in maintd serve).
No framework: routing three paths by hand costs nothing, and the process stays light.
"""

from __future__ import annotations

import collections
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from maintd.alerts import admission
from maintd.alerts.admission import (
    ALERTMANAGER_MAX_BODY,
    NATIVE_MAX_BODY,
    PAGERDUTY_MAX_BODY,
    PROBLEM_MEDIA_TYPE,
    Rejected,
    Sender,
    validate,
)
from maintd.alerts.formats import pagerduty
from maintd.alerts.formats.alertmanager import AlertmanagerWebhook
from maintd.alerts.formats.native import NativeAlerts
from maintd.alerts.formats.pagerduty import PagerDutyEvent
from maintd.api.ratelimit import RateLimiter
from maintd.clock import Clock
from maintd.intake.database import Row
from maintd.intake.journal import Journal
from maintd.intake.senders import Senders
from maintd.roles import Role

log = logging.getLogger(__name__)

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
Handler = Callable[[Scope, Receive, Send], Awaitable[None]]

ALERTMANAGER_PREFIX = "/integrations/alertmanager/"
JSON = b"application/json"
PROBLEM = PROBLEM_MEDIA_TYPE.encode()
METRICS = b"text/plain; version=0.0.4; charset=utf-8"


class Disconnected(Exception):
    """The client went away before its body was read: nothing to answer."""


class Intake:
    """The ASGI app. ``journal`` and ``senders`` start and stop with the lifespan."""

    def __init__(self, journal: Journal, senders: Senders, limiter: RateLimiter, clock: Clock) -> None:
        self.journal = journal
        self.senders = senders
        self.limiter = limiter
        self.clock = clock
        self.requests: collections.Counter[tuple[str, str]] = collections.Counter()  # (source, outcome)
        self.alerts: collections.Counter[str] = collections.Counter()  # source → alerts journaled
        self._routes: dict[str, tuple[str, Handler]] = {
            "/api/v1/alerts": ("POST", self._native),
            "{integration_key}": ("POST", self._alertmanager),
            "/v2/enqueue": ("POST", self._pagerduty),
            "/healthz": ("GET", self._healthz),
            "/readyz": ("GET", self._readyz),
            "/metrics": ("GET", self._metrics),
        }

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            with contextlib.suppress(Disconnected):
                await self._route(scope, receive, send)
        elif scope["type"] == "lifespan":
            await self._lifespan(receive, send)

    async def _route(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope["path"]
        key = path[len(ALERTMANAGER_PREFIX) :] if path.startswith(ALERTMANAGER_PREFIX) else ""
        if key and "/" not in key:
            path = "{integration_key}"  # as Starlette matches /integrations/alertmanager/{integration_key}
        route = self._routes.get(path)
        if route is None:
            await _problem(send, Rejected(404, "Not found", "Not Found"))
        elif scope["method"] != route[0]:
            await _problem(
                send, Rejected(405, "Method not allowed", "Method Not Allowed"), {"Allow": route[0]}
            )
        else:
            await route[1](scope, receive, send)

    # -- the alert routes: the order of checks is maintd.api.ingest's ----------

    async def _native(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            headers = _headers(scope)
            sender = await self._native_sender(headers.get("authorization", ""))
            self._limit(sender.actor)
            body = await _body(headers, receive, NATIVE_MAX_BODY)
            count = len(validate(NativeAlerts, admission.parse_json(body)).root)
            row = Row(self.clock.now(), "native", sender.actor, sender.integration, None, body)
            intake_id = await self.journal.store(row)
        except Rejected as rejected:
            await self._refused(send, "native", rejected)
            return
        await self._queued(send, "native", count, intake_id)

    async def _native_sender(self, authorization: str) -> Sender:
        key = admission.integration_key(authorization)
        if key is not None:
            return admission.native_integration(await self.senders.integration(key))
        principal = await self.senders.principal(authorization, Role.responder)
        return Sender(principal.actor, None)

    async def _alertmanager(self, scope: Scope, receive: Receive, send: Send) -> None:
        key = scope["path"][len(ALERTMANAGER_PREFIX) :]
        try:
            found = admission.alertmanager_key(await self.senders.integration(key))
            actor = f"integration:{found.name}"
            self._limit(actor)
            headers = _headers(scope)
            body = await _body(headers, receive, ALERTMANAGER_MAX_BODY)
            count = len(validate(AlertmanagerWebhook, admission.parse_json(body)).alerts)
            row = Row(self.clock.now(), "alertmanager", actor, found.name, None, body)
            intake_id = await self.journal.store(row)
        except Rejected as rejected:
            await self._refused(send, "alertmanager", rejected)
            return
        await self._queued(send, "alertmanager", count, intake_id)

    async def _pagerduty(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            body = await _body(_headers(scope), receive, PAGERDUTY_MAX_BODY)
            event = validate(PagerDutyEvent, admission.parse_json(body))
            found = admission.pagerduty_key(await self.senders.integration(event.routing_key))
            actor = f"integration:{found.name}"
            self._limit(actor)
            dedup_key = pagerduty.dedup_key_of(event)  # answered now, so stored with the body
            await self.journal.store(Row(self.clock.now(), "pagerduty", actor, found.name, dedup_key, body))
        except Rejected as rejected:
            # A database outage is maintd's own problem answer, as on maintd serve's route.
            shape = admission.problem if rejected.status in (401, 403, 503) else admission.pagerduty_error
            self._count("pagerduty", rejected)
            status, answer, extra = shape(rejected)
            await _answer(send, status, answer, extra, PROBLEM if shape is admission.problem else JSON)
            return
        self.requests["pagerduty", "queued"] += 1
        self.alerts["pagerduty"] += 1
        await _answer(send, 202, {"status": "success", "message": "Event processed", "dedup_key": dedup_key})

    def _limit(self, key: str) -> None:
        wait = self.limiter.take(key, self.clock.now())
        if wait > 0:
            raise admission.over_rate(key, wait, self.limiter.rate, self.limiter.burst)

    async def _queued(self, send: Send, source: str, count: int, intake_id: int) -> None:
        self.requests[source, "queued"] += 1
        self.alerts[source] += count
        await _answer(send, 202, {"status": "queued", "alerts": count, "intake_id": intake_id})

    async def _refused(self, send: Send, source: str, rejected: Rejected) -> None:
        self._count(source, rejected)
        await _problem(send, rejected)

    def _count(self, source: str, rejected: Rejected) -> None:
        outcome = "unavailable" if rejected.status == 503 else admission.outcome(rejected)
        self.requests[source, outcome] += 1

    # -- health, metrics, lifespan ----------------------------------------------

    async def _healthz(self, _scope: Scope, _receive: Receive, send: Send) -> None:
        await _answer(send, 200, {"status": "ok"})

    async def _metrics(self, _scope: Scope, _receive: Receive, send: Send) -> None:
        await _send(send, 200, self.metrics().encode(), METRICS)

    async def _readyz(self, _scope: Scope, _receive: Receive, send: Send) -> None:
        database = await self.senders.ready()
        ready = database == "ok"
        await _answer(send, 200 if ready else 503, {"ready": ready, "checks": {"database": database}})

    def metrics(self) -> str:
        """Prometheus text: requests and alerts by source and outcome, and the writer's state."""
        lines = [
            "# HELP maintd_intake_requests_total Alert requests by source and outcome"
            " (queued, rejected, rate_limited, unavailable)",
            "# TYPE maintd_intake_requests_total counter",
        ]
        for (source, outcome), n in sorted(self.requests.items()):
            lines.append(f'maintd_intake_requests_total{{source="{source}",outcome="{outcome}"}} {n}')
        lines += [
            "# HELP maintd_intake_alerts_total Alerts journaled (committed) by source",
            "# TYPE maintd_intake_alerts_total counter",
        ]
        lines += [f'maintd_intake_alerts_total{{source="{s}"}} {n}' for s, n in sorted(self.alerts.items())]
        lines += [
            "# HELP maintd_intake_commits_total Journal transactions committed (each holds many requests)",
            "# TYPE maintd_intake_commits_total counter",
            f"maintd_intake_commits_total {self.journal.commits}",
            "# HELP maintd_intake_pending Requests waiting for the journal's next commit",
            "# TYPE maintd_intake_pending gauge",
            f"maintd_intake_pending {self.journal.pending}",
        ]
        return "\n".join(lines) + "\n"

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                self.journal.start()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.journal.stop()  # what was accepted is committed before the process ends
                self.senders.close()
                await send({"type": "lifespan.shutdown.complete"})
                return


# -- HTTP by hand -----------------------------------------------------------------


def _headers(scope: Scope) -> dict[str, str]:
    """The request headers the routes read (the first of each, as Starlette's ``get``)."""
    found: dict[str, str] = {}
    for name, value in scope["headers"]:
        key = _WANTED.get(name)
        if key is not None and key not in found:
            found[key] = value.decode("latin-1")
    return found


_WANTED = {
    b"content-type": "content-type",
    b"content-length": "content-length",
    b"authorization": "authorization",
}


async def _body(headers: dict[str, str], receive: Receive, limit: int) -> bytes:
    """The body, refused early when it is not JSON or longer than ``limit`` (counted as it streams)."""
    admission.check_headers(headers.get("content-type", ""), headers.get("content-length"), limit)
    message = await receive()
    if message["type"] == "http.disconnect":
        raise Disconnected
    body: bytes = message.get("body", b"")
    if not message.get("more_body"):  # the usual case: the whole body in one message
        if len(body) > limit:
            raise admission.too_long(limit)
        return body
    parts = bytearray(body)
    while True:
        if len(parts) > limit:
            raise admission.too_long(limit)
        message = await receive()
        if message["type"] == "http.disconnect":
            raise Disconnected
        parts += message.get("body", b"")
        if not message.get("more_body"):
            if len(parts) > limit:
                raise admission.too_long(limit)
            return bytes(parts)


async def _problem(send: Send, rejected: Rejected, extra: dict[str, str] | None = None) -> None:
    status, body, headers = admission.problem(rejected)
    await _answer(send, status, body, {**headers, **(extra or {})}, PROBLEM)


async def _answer(
    send: Send, status: int, body: dict[str, Any], headers: dict[str, str] | None = None, media: bytes = JSON
) -> None:
    # Encoded as Starlette's JSONResponse encodes, so both doors answer byte for byte alike.
    data = json.dumps(body, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode()
    await _send(send, status, data, media, headers)


async def _send(
    send: Send, status: int, data: bytes, media: bytes, headers: dict[str, str] | None = None
) -> None:
    raw = [(b"content-type", media), (b"content-length", b"%d" % len(data))]
    raw += [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": data})
