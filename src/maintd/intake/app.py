"""The intake's routes: maintd serve's three alert routes, health and metrics, by hand.

Each alert route checks what maintd serve's route checks, in the same order, through the same
rules (maintd.alerts.admission), then journals the body as received and answers 202 once it is
committed: ``{"status": "queued", "alerts": N, "intake_id": ID}`` (PagerDuty: its own answer).
What becomes of each alert is the drain's business (maintd.intake.drain, in maintd serve).
No framework: routing six paths by hand costs nothing, and the process stays light.
"""

from __future__ import annotations

import collections
import json
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from maintd.alerts import admission
from maintd.alerts.admission import (
    ALERTMANAGER_MAX_BODY,
    NATIVE_MAX_BODY,
    PAGERDUTY_MAX_BODY,
    PROBLEM_MEDIA_TYPE,
    Rejected,
    Sender,
    read,
)
from maintd.alerts.formats import pagerduty
from maintd.alerts.formats.alertmanager import AlertmanagerWebhook
from maintd.alerts.formats.native import NativeAlerts
from maintd.alerts.formats.pagerduty import PagerDutyEvent
from maintd.api.ratelimit import RateLimiter
from maintd.clock import Clock
from maintd.intake.database import Row
from maintd.intake.http import Request, Response
from maintd.intake.journal import Journal
from maintd.intake.senders import Senders
from maintd.roles import Role

log = logging.getLogger(__name__)

Route = Callable[[Request], Awaitable[Response]]

ALERTMANAGER_PREFIX = "/integrations/alertmanager/"
JSON = b"application/json"
PROBLEM = PROBLEM_MEDIA_TYPE.encode()
METRICS = b"text/plain; version=0.0.4; charset=utf-8"
# The answer to each accepted request, byte for byte what ``_json`` makes of it (a test holds
# the two equal) in a twentieth of its time: json.dumps with options builds an encoder each call.
QUEUED = b'{"status":"queued","alerts":%d,"intake_id":%d}'


class Intake:
    """The routes over a journal, the senders' look-ups and a rate limiter."""

    def __init__(self, journal: Journal, senders: Senders, limiter: RateLimiter, clock: Clock) -> None:
        self.journal = journal
        self.senders = senders
        self.limiter = limiter
        self.clock = clock
        self.requests: collections.Counter[tuple[str, str]] = collections.Counter()  # (source, outcome)
        self.alerts: collections.Counter[str] = collections.Counter()  # source → alerts journaled
        self._routes: dict[str, tuple[str, Route]] = {
            "/api/v1/alerts": ("POST", self._native),
            "{integration_key}": ("POST", self._alertmanager),
            "/v2/enqueue": ("POST", self._pagerduty),
            "/healthz": ("GET", self._healthz),
            "/readyz": ("GET", self._readyz),
            "/metrics": ("GET", self._metrics),
        }

    async def handle(self, request: Request) -> Response:
        path = request.path
        key = path[len(ALERTMANAGER_PREFIX) :] if path.startswith(ALERTMANAGER_PREFIX) else ""
        if key and "/" not in key:
            path = "{integration_key}"  # as Starlette matches /integrations/alertmanager/{integration_key}
        route = self._routes.get(path)
        if route is None:
            return _problem(Rejected(404, "Not found", "Not Found"))
        if request.method != route[0]:
            return _problem(Rejected(405, "Method not allowed", "Method Not Allowed"), (("Allow", route[0]),))
        return await route[1](request)

    # -- the alert routes: the order of checks is maintd.api.ingest's ----------

    async def _native(self, request: Request) -> Response:
        try:
            sender = await self._native_sender(request.headers.get("authorization", ""))
            now = self.clock.now()
            self._limit(sender.actor, now)
            body = _body(request, NATIVE_MAX_BODY)
            count = len(read(NativeAlerts, body).root)
            row = Row(now, "native", sender.actor, sender.integration, None, body)
            intake_id = await self.journal.store(row)
        except Rejected as rejected:
            return self._refused("native", rejected)
        return self._queued("native", count, intake_id)

    async def _native_sender(self, authorization: str) -> Sender:
        key = admission.integration_key(authorization)
        if key is not None:
            return admission.native_integration(await self.senders.integration(key))
        principal = await self.senders.principal(authorization, Role.responder)
        return Sender(principal.actor, None)

    async def _alertmanager(self, request: Request) -> Response:
        try:
            found = admission.alertmanager_key(
                await self.senders.integration(request.path[len(ALERTMANAGER_PREFIX) :])
            )
            actor = f"integration:{found.name}"
            now = self.clock.now()
            self._limit(actor, now)
            body = _body(request, ALERTMANAGER_MAX_BODY)
            count = len(read(AlertmanagerWebhook, body).alerts)
            row = Row(now, "alertmanager", actor, found.name, None, body)
            intake_id = await self.journal.store(row)
        except Rejected as rejected:
            return self._refused("alertmanager", rejected)
        return self._queued("alertmanager", count, intake_id)

    async def _pagerduty(self, request: Request) -> Response:
        try:
            body = _body(request, PAGERDUTY_MAX_BODY)
            event = read(PagerDutyEvent, body)
            found = admission.pagerduty_key(await self.senders.integration(event.routing_key))
            actor = f"integration:{found.name}"
            now = self.clock.now()
            self._limit(actor, now)
            dedup_key = pagerduty.dedup_key_of(event)  # answered now, so stored with the body
            await self.journal.store(Row(now, "pagerduty", actor, found.name, dedup_key, body))
        except Rejected as rejected:
            self._count("pagerduty", rejected)
            if rejected.status == 503:  # an outage: maintd's own problem answer, as maintd serve's route
                return _problem(rejected)
            status, answer, extra = admission.pagerduty_error(rejected)
            return _json(status, answer, tuple(extra.items()))
        self.requests["pagerduty", "queued"] += 1
        self.alerts["pagerduty"] += 1
        return _json(202, {"status": "success", "message": "Event processed", "dedup_key": dedup_key})

    def _limit(self, key: str, now: datetime) -> None:
        wait = self.limiter.take(key, now)
        if wait > 0:
            raise admission.over_rate(key, wait, self.limiter.rate, self.limiter.burst)

    def _queued(self, source: str, count: int, intake_id: int) -> Response:
        self.requests[source, "queued"] += 1
        self.alerts[source] += count
        return Response(202, QUEUED % (count, intake_id), JSON)

    def _refused(self, source: str, rejected: Rejected) -> Response:
        self._count(source, rejected)
        return _problem(rejected)

    def _count(self, source: str, rejected: Rejected) -> None:
        outcome = "unavailable" if rejected.status == 503 else admission.outcome(rejected)
        self.requests[source, outcome] += 1

    # -- health and metrics -----------------------------------------------------

    async def _healthz(self, _request: Request) -> Response:
        return _json(200, {"status": "ok"})

    async def _readyz(self, _request: Request) -> Response:
        database = await self.senders.ready()
        ready = database == "ok"
        return _json(200 if ready else 503, {"ready": ready, "checks": {"database": database}})

    async def _metrics(self, _request: Request) -> Response:
        return Response(200, self.metrics().encode(), METRICS)

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


def _body(request: Request, limit: int) -> bytes:
    """The body, refused when it is not JSON or longer than ``limit`` (declared, or as received)."""
    headers = request.headers
    admission.check_headers(headers.get("content-type", ""), headers.get("content-length"), limit)
    if request.too_long or request.length > limit:
        raise admission.too_long(limit)
    return request.body


def _problem(rejected: Rejected, extra: tuple[tuple[str, str], ...] = ()) -> Response:
    status, body, headers = admission.problem(rejected)
    return _json(status, body, tuple(headers.items()) + extra, PROBLEM)


def _json(
    status: int, body: dict[str, Any], headers: tuple[tuple[str, str], ...] = (), media: bytes = JSON
) -> Response:
    # Encoded as Starlette's JSONResponse encodes, so both doors answer byte for byte alike.
    data = json.dumps(body, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode()
    return Response(status, data, media, headers)
