"""What an alert request must pass before anything is stored, and how each refusal is answered.

One copy of the rules for both doors alerts come in by: ``maintd serve``'s routes
(maintd.api.ingest) and the light ``maintd intake`` process (maintd.intake), so the same bad
request gets the same status, body and headers from either. Nothing here imports a web
framework or SQLAlchemy: the intake must stay light. Each route checks, in its order, the
sender, the rate limit, the content type, the length, the JSON and the format's model.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from pydantic import BaseModel, ValidationError

from maintd.alerts.formats import pagerduty, problems_of
from maintd.roles import PREFIX, Principal, Role

NATIVE_MAX_BODY = 1024 * 1024
ALERTMANAGER_MAX_BODY = 4 * 1024 * 1024  # a group of a few thousand alerts
PAGERDUTY_MAX_BODY = pagerduty.MAX_BODY
PROBLEM_MEDIA_TYPE = "application/problem+json"  # RFC 9457, as maintd.api.problems
RETRY_AFTER = 5  # seconds, as maintd.store.outage: PostgreSQL restarts in about that long

# The bearer-token answers, word for word as maintd.api.deps.require gives them.
NO_BEARER = "send 'Authorization: Bearer <token>' (create one: maintd token create)"
UNKNOWN_TOKEN = "unknown or revoked token"
UNKNOWN_KEY = "unknown or disabled integration key"

M = TypeVar("M", bound=BaseModel)


class Rejected(Exception):
    """A request refused before anything was stored."""

    def __init__(
        self,
        status: int,
        title: str,
        detail: str,
        errors: list[tuple[str, str]] | None = None,
        retry_after: int | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.title = title
        self.detail = detail
        self.errors = errors or []
        self.retry_after = retry_after


@dataclass(frozen=True)
class Sender:
    actor: str  # for the event log: token:NAME or integration:NAME
    integration: str | None


class Keyed(Protocol):
    """An integration as found by its key (maintd.alerts.integrations.Integration, or the intake's)."""

    @property
    def name(self) -> str: ...

    @property
    def kind(self) -> str: ...


K = TypeVar("K", bound=Keyed)


# -- senders ------------------------------------------------------------------


def integration_key(authorization: str) -> str | None:
    """The integration key a native sender put in its bearer header; None for an API token or none.

    API tokens start with ``mtd_``; integration keys are hex digits, so the two never meet.
    """
    scheme, _, credential = authorization.partition(" ")
    credential = credential.strip()
    if scheme.lower() == "bearer" and credential and not credential.startswith(PREFIX):
        return credential
    return None


def bearer_token(authorization: str) -> str:
    """The API token in the header (Rejected 401 without one)."""
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise Rejected(401, "Unauthorized", NO_BEARER)
    return token.strip()


def native_integration(found: Keyed | None) -> Sender:
    """The sender behind a native route's integration key (Rejected 401 or 403 otherwise)."""
    if found is None:
        raise Rejected(401, "Unauthorized", UNKNOWN_KEY)
    if found.kind != "native":
        raise Rejected(403, "Forbidden", wrong_key(found, "native"))
    return Sender(f"integration:{found.name}", found.name)


def allowed(principal: Principal | None, needed: Role) -> Principal:
    """The token's principal if its role allows ``needed`` (Rejected 401 or 403 otherwise)."""
    if principal is None:
        raise Rejected(401, "Unauthorized", UNKNOWN_TOKEN)
    if not principal.role.allows(needed):
        raise Rejected(403, "Forbidden", role_refused(principal, needed))
    return principal


def role_refused(principal: Principal, needed: Role) -> str:
    return f"this needs the {needed} role; token {principal.name!r} is {principal.role}"


def wrong_key(found: Keyed | None, kind: str) -> str:
    if found is None:
        return f"{UNKNOWN_KEY} (create one: maintd integration create --kind {kind})"
    return f"this key belongs to the {found.kind} integration {found.name!r}; this route takes {kind} keys"


def alertmanager_key(found: K | None) -> K:
    """The integration of an Alertmanager webhook's URL key (Rejected 404 otherwise)."""
    if found is None or found.kind != "alertmanager":
        raise Rejected(404, "Not found", wrong_key(found, "alertmanager"))
    return found


def pagerduty_key(found: K | None) -> K:
    """The integration of a PagerDuty event's routing_key (Rejected 400, as PagerDuty, otherwise)."""
    if found is None or found.kind != "pagerduty":
        message = wrong_key(found, "pagerduty")
        raise Rejected(400, "Bad request", message, [("routing_key", message)])
    return found


def over_rate(key: str, wait: float, rate: float, burst: int) -> Rejected:
    """The 429 for a sender whose bucket (maintd.api.ratelimit) is empty for ``wait`` seconds."""
    return Rejected(
        429,
        "Too many requests",
        f"{key} is over its limit of {rate:g} requests/s (burst {burst}); send again later",
        retry_after=max(1, math.ceil(wait)),
    )


def unavailable(reason: str) -> Rejected:
    """The 503 when the database did not answer or store: nothing was stored, a repeat is harmless."""
    detail = f"{reason}; send the request again later (a repeat is harmless)"
    return Rejected(503, "Database unavailable", detail, retry_after=RETRY_AFTER)


# -- the body -----------------------------------------------------------------


def check_headers(content_type: str, content_length: str | None, limit: int) -> None:
    """Refuse early a body that is not JSON, or that declares itself longer than ``limit`` bytes."""
    media = content_type.partition(";")[0].strip().lower()
    if media != "application/json" and not (media.startswith("application/") and media.endswith("+json")):
        wrong = content_type or "none"
        raise Rejected(415, "Unsupported media type", f"send Content-Type: application/json, not {wrong}")
    if content_length is not None:
        if not content_length.isdigit():
            raise Rejected(400, "Bad request", f"Content-Length {content_length!r} is not a number")
        if int(content_length) > limit:
            raise Rejected(
                413, "Payload too large", f"the body is {content_length} bytes; the limit is {limit}"
            )


def too_long(limit: int) -> Rejected:
    """For a body counted as it streams (chunked bodies have no Content-Length)."""
    return Rejected(413, "Payload too large", f"the body is over the limit of {limit} bytes")


def parse_json(body: bytes | bytearray) -> object:
    if not body:
        raise Rejected(400, "Malformed JSON", "the body is empty; send JSON")
    try:
        return json.loads(body)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise Rejected(400, "Malformed JSON", f"the body is not valid JSON: {exc}") from None


def read(model: type[M], body: bytes | bytearray) -> M:
    """``validate(model, parse_json(body))``, in one pass when the body is fine.

    pydantic's own JSON parser makes the model straight from the bytes, about twice as fast as
    ``json.loads`` and then validating the objects it made. A body that pass refuses goes through
    the two steps, so a refusal says what it always said (400 malformed, 422 invalid), and what
    only ``json.loads`` takes (UTF-16, a byte order mark, a lone surrogate) is still taken.
    """
    if body:
        try:
            return model.model_validate_json(body)
        except ValidationError:
            pass
    return validate(model, parse_json(body))


def validate(model: type[M], document: object) -> M:
    try:
        return model.model_validate(document)
    except ValidationError as exc:
        errors = problems_of(exc)
        first = f"{errors[0][0]}: {errors[0][1]}" if errors[0][0] else errors[0][1]
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        raise Rejected(422, "Invalid alert", first + more, errors) from None


# -- answers ------------------------------------------------------------------

Answer = tuple[int, dict[str, Any], dict[str, str]]  # status, JSON body, extra headers


def problem(rejected: Rejected) -> Answer:
    """The RFC 9457 problem for a refusal (media type PROBLEM_MEDIA_TYPE), as maintd.api.problems."""
    body: dict[str, Any] = {"type": "about:blank", "title": rejected.title, "status": rejected.status}
    if rejected.detail:
        body["detail"] = rejected.detail
    if rejected.errors:
        body["errors"] = [{"field": f, "message": m} for f, m in rejected.errors]
    headers: dict[str, str] = {}
    if rejected.status == 401:
        headers["WWW-Authenticate"] = "Bearer"
    if rejected.retry_after is not None:
        headers["Retry-After"] = str(rejected.retry_after)
    return rejected.status, body, headers


def pagerduty_error(rejected: Rejected) -> Answer:
    """PagerDuty's own error shape; everything it would call invalid is a 400 there."""
    status = rejected.status if rejected.status in (413, 429) else 400
    if status == 429:
        body: dict[str, Any] = {"status": "throttle event", "message": rejected.detail}
    elif status == 413:
        body = {"status": "request too large", "message": rejected.detail}
    else:
        errors = [f"{f}: {m}" if f else m for f, m in rejected.errors] or [rejected.detail]
        body = {"status": "invalid event", "message": "Event object is invalid", "errors": errors}
    headers = {"Retry-After": str(rejected.retry_after)} if rejected.retry_after is not None else {}
    return status, body, headers


def outcome(rejected: Rejected) -> str:
    """The metrics' outcome label of a refused request."""
    return "rate_limited" if rejected.status == 429 else "rejected"
