"""``http``: request a URL; status code, body text, JSON values and latency decide the result."""

from __future__ import annotations

import asyncio
import codecs
import time
import warnings
from datetime import timedelta

from pydantic import Field, HttpUrl

from maintd.checks.base import CheckResult, Kind, RunContext, Status
from maintd.checks.http.client import HttpError
from maintd.checks.http.jsonbody import JsonAssertion, parse_json
from maintd.plan.base import StrictModel
from maintd.plan.types import Duration

BODY_LIMIT = 1 << 20  # bytes read for body_contains and json; a longer body is cut off here


# The param is called ``json`` in plans: the field shadows pydantic's deprecated BaseModel.json().
with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message='Field name "json"', category=UserWarning)

    class HttpConfig(StrictModel):
        url: HttpUrl | None = Field(default=None, description="default: the target's connection.url")
        method: str = Field(default="GET", pattern=r"^(GET|HEAD|POST|PUT|PATCH|DELETE|OPTIONS)$")
        headers: dict[str, str] = {}
        expect_status: list[int] = Field(default=[], description="accepted codes; default any 2xx or 3xx")
        body_contains: str | None = None
        json: list[JsonAssertion] = Field(  # type: ignore[assignment]
            default=[], description="assertions on values in a JSON body, all must hold"
        )
        warn_latency: Duration | None = None
        crit_latency: Duration | None = None
        verify_tls: bool = True
        follow_redirects: bool = True
        keep_alive: bool = Field(
            default=False,
            description="reuse an idle pooled connection; default: a new connection per check",
        )


class HttpCheck:
    def __init__(self, config: HttpConfig) -> None:
        self.config = config

    async def run(self, ctx: RunContext) -> CheckResult:
        cfg = self.config
        url = str(cfg.url) if cfg.url else ctx.target.connection.get("url")
        if not url:
            return CheckResult(
                Status.unknown, f"no url: set params.url or target {ctx.target.name}'s connection.url"
            )
        started = time.perf_counter()
        try:
            async with asyncio.timeout(ctx.seconds_left()):
                response = await ctx.resources.http_client.request(
                    cfg.method,
                    url,
                    cfg.headers,
                    verify=cfg.verify_tls,
                    redirects=cfg.follow_redirects,
                    body_limit=BODY_LIMIT if cfg.body_contains or cfg.json else 0,
                    keep_alive=cfg.keep_alive,
                )
        except TimeoutError:
            return CheckResult(Status.critical, f"{cfg.method} {url}: timed out")
        except HttpError as exc:
            return CheckResult(Status.critical, f"{cfg.method} {url}: {exc}")
        code, body, cut = response.status, response.body, response.cut
        charset = _charset(response.headers.get("content-type", ""))
        elapsed = time.perf_counter() - started
        metrics = {"time": round(elapsed, 6), "status_code": float(code)}
        summary = f"{cfg.method} {url} → {code} in {elapsed * 1000:.0f} ms"
        expected = cfg.expect_status or range(200, 400)
        if code not in expected:
            return CheckResult(Status.critical, f"{summary}; expected {_codes(cfg.expect_status)}", metrics)
        if cfg.body_contains and not _contains(body, charset, cfg.body_contains):
            where = f" (in its first {BODY_LIMIT} bytes)" if cut else ""
            return CheckResult(
                Status.critical, f"{summary}; body lacks {cfg.body_contains!r}{where}", metrics
            )
        if cfg.json:
            problems = _json_problems(cfg.json, body, cut, metrics)
            if problems:
                more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
                lines = [f"{summary}; JSON {problems[0]}{more}"]
                if len(problems) > 1:
                    lines += [f"JSON {problem}" for problem in problems]
                return CheckResult(Status.critical, "\n".join(lines), metrics)
        return CheckResult(_latency_status(elapsed, cfg.warn_latency, cfg.crit_latency), summary, metrics)


def _charset(content_type: str) -> str | None:
    """The ``charset`` parameter of a Content-Type value, if it has one."""
    for parameter in content_type.split(";")[1:]:
        name, _, value = parameter.partition("=")
        if name.strip().lower() == "charset":
            return value.strip().strip('"') or None
    return None


def _contains(body: bytes, charset: str | None, text: str) -> bool:
    """``text`` is in the body as UTF-8 bytes, or in the body decoded in its declared charset
    (invalid bytes replaced, never an error)."""
    if text.encode() in body:
        return True
    try:
        codec = codecs.lookup(charset or "utf-8").name
    except LookupError:
        codec = "utf-8"
    return text in body.decode(codec, "replace")


def _json_problems(
    assertions: list[JsonAssertion], body: bytes, cut: bool, metrics: dict[str, float]
) -> list[str]:
    """Why the body fails its json assertions (empty when all hold); adds min/max values to metrics."""
    if cut:
        return [f"not checked: the body is larger than {BODY_LIMIT} bytes"]
    document, not_json = parse_json(body)
    if not_json is not None:
        return [f"not checked: the body is not JSON ({not_json})"]
    problems = []
    for assertion in assertions:
        problem = assertion.failure(document)
        if problem is not None:
            problems.append(problem)
        value = assertion.metric(document)
        if value is not None:
            metrics[f"json:{assertion.path}"] = value
    return problems


def _latency_status(elapsed: float, warn: timedelta | None, crit: timedelta | None) -> Status:
    if crit is not None and elapsed >= crit.total_seconds():
        return Status.critical
    if warn is not None and elapsed >= warn.total_seconds():
        return Status.warning
    return Status.ok


def _codes(codes: list[int]) -> str:
    return ", ".join(map(str, codes)) if codes else "2xx or 3xx"


KIND = Kind(
    name="http",
    config=HttpConfig,
    build=HttpCheck,
    summary="request a URL; expected status, body text and latency thresholds",
)
