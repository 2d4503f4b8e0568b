"""``http``: request a URL; status code, body text and latency decide the result."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta

import aiohttp
from pydantic import Field, HttpUrl

from maintd.checks.base import CheckResult, Kind, RunContext, Status
from maintd.plan.base import StrictModel
from maintd.plan.types import Duration

_BODY_LIMIT = 1 << 20  # bytes read when looking for body_contains


class HttpConfig(StrictModel):
    url: HttpUrl | None = Field(default=None, description="default: the target's connection.url")
    method: str = Field(default="GET", pattern=r"^(GET|HEAD|POST|PUT|PATCH|DELETE|OPTIONS)$")
    headers: dict[str, str] = {}
    expect_status: list[int] = Field(default=[], description="accepted codes; default any 2xx or 3xx")
    body_contains: str | None = None
    warn_latency: Duration | None = None
    crit_latency: Duration | None = None
    verify_tls: bool = True
    follow_redirects: bool = True


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
            async with ctx.resources.http().request(
                cfg.method,
                url,
                headers=cfg.headers,
                ssl=cfg.verify_tls,
                allow_redirects=cfg.follow_redirects,
                timeout=aiohttp.ClientTimeout(total=ctx.seconds_left() or None),
            ) as response:
                body = await response.content.read(_BODY_LIMIT) if cfg.body_contains else b""
                code = response.status
        except (TimeoutError, aiohttp.ClientError, ValueError) as exc:
            return CheckResult(Status.critical, f"{cfg.method} {url}: {_describe(exc)}")
        elapsed = time.perf_counter() - started
        metrics = {"time": round(elapsed, 6), "status_code": float(code)}
        summary = f"{cfg.method} {url} → {code} in {elapsed * 1000:.0f} ms"
        expected = cfg.expect_status or range(200, 400)
        if code not in expected:
            return CheckResult(Status.critical, f"{summary}; expected {_codes(cfg.expect_status)}", metrics)
        if cfg.body_contains and cfg.body_contains.encode() not in body:
            return CheckResult(Status.critical, f"{summary}; body lacks {cfg.body_contains!r}", metrics)
        return CheckResult(_latency_status(elapsed, cfg.warn_latency, cfg.crit_latency), summary, metrics)


def _latency_status(elapsed: float, warn: timedelta | None, crit: timedelta | None) -> Status:
    if crit is not None and elapsed >= crit.total_seconds():
        return Status.critical
    if warn is not None and elapsed >= warn.total_seconds():
        return Status.warning
    return Status.ok


def _codes(codes: list[int]) -> str:
    return ", ".join(map(str, codes)) if codes else "2xx or 3xx"


def _describe(exc: BaseException) -> str:
    if isinstance(exc, asyncio.TimeoutError):
        return "timed out"
    return str(exc) or type(exc).__name__


KIND = Kind(
    name="http",
    config=HttpConfig,
    build=HttpCheck,
    summary="request a URL; expected status, body text and latency thresholds",
)
