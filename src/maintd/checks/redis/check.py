"""Connect, PING and read INFO with redis-py (imported when the first redis check runs), then judge."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime
from typing import Any

from maintd.checks.base import CheckResult, RunContext, RunSample, Status, format_bytes
from maintd.checks.redis.config import RedisConfig
from maintd.checks.redis.connection import (
    AuthenticationError,
    Endpoint,
    RedisError,
    connect,
    describe_error,
    endpoint_of,
)
from maintd.checks.redis.deltas import judge_counters
from maintd.checks.redis.info import judge_clients, judge_memory, judge_replication
from maintd.checks.redis.report import Findings, clients_text, fmt_ms, in_seconds, limits, upper

HISTORY_LOOKBACK = 5  # earlier runs searched for the newest one that read the counters


async def run(cfg: RedisConfig, ctx: RunContext) -> CheckResult:
    now = ctx.clock.now()
    try:
        endpoint = endpoint_of(ctx.target.connection, cfg.username, cfg.verify_tls)
    except ValueError as exc:
        return CheckResult(Status.unknown, f"redis on target {ctx.target.name}: {exc}")
    password = endpoint.password
    if cfg.password_secret in ctx.target.secrets:
        try:
            password = ctx.secret(cfg.password_secret)
        except LookupError as exc:
            return CheckResult(Status.unknown, f"redis {endpoint}: {exc}")
    budget = ctx.seconds_left()
    budget -= min(0.5, budget * 0.1)  # answer before the runner cuts the run off
    if budget <= 0:
        return CheckResult(Status.unknown, f"redis {endpoint}: no time left before the deadline")
    started = time.monotonic()
    try:
        async with asyncio.timeout(budget):
            client = connect(endpoint, password, timeout=budget)
            try:
                connect_started = time.perf_counter()
                await client.ping()  # connects and authenticates first
                ping_started = time.perf_counter()
                await client.ping()
                ping = time.perf_counter() - ping_started
                info: dict[str, Any] = await client.info()
            finally:
                await client.aclose()
            found = Findings()
            found.metrics["connect_seconds"] = round(ping_started - connect_started, 6)
            found.metrics["ping_seconds"] = round(ping, 6)
            history = await ctx.history(HISTORY_LOOKBACK)
            await _judge(cfg, info, ping, history, now, endpoint, password, budget, started, found)
    except AuthenticationError as exc:
        if password is None:
            why = (
                f"authentication required and no password: target {ctx.target.name} has no secret "
                f"named {cfg.password_secret!r} (param password_secret)"
            )
        else:
            why = describe_error(exc, budget)
        return CheckResult(Status.critical, f"redis {endpoint}: {why}")
    except (RedisError, OSError, TimeoutError) as exc:
        return CheckResult(Status.critical, f"redis {endpoint}: {describe_error(exc, budget)}")
    role = "replica" if info.get("role") == "slave" else str(info.get("role", "unknown"))
    return found.result(f"redis {endpoint} ({role})", _headline(found.metrics, info))


async def _judge(
    cfg: RedisConfig,
    info: dict[str, Any],
    ping: float,
    history: list[RunSample],
    now: datetime,
    endpoint: Endpoint,
    password: str | None,
    budget: float,
    started: float,
    found: Findings,
) -> None:
    found.add(
        upper(ping, in_seconds(cfg.warn_latency), in_seconds(cfg.crit_latency)),
        f"ping {fmt_ms(ping)}{limits(in_seconds(cfg.warn_latency), in_seconds(cfg.crit_latency), fmt_ms)}",
    )
    judge_memory(cfg, info, found)
    judge_clients(cfg, info, found)
    judge_counters(cfg, info, history, now, found)
    await judge_replication(cfg, info, endpoint, password, budget - (time.monotonic() - started), found)


def _headline(metrics: dict[str, float], info: dict[str, Any]) -> list[str]:
    parts = [f"ping {fmt_ms(metrics['ping_seconds'])}"]
    if "memory_percent" in metrics:
        parts.append(f"memory {metrics['memory_percent']:.1f}% of {format_bytes(metrics['maxmemory'])}")
    else:
        parts.append(f"memory {format_bytes(metrics['used_memory'])} (maxmemory 0: unbounded)")
    if "hit_ratio" in metrics:
        parts.append(f"hit ratio {metrics['hit_ratio']:.1%} of {metrics['lookups']:.0f} lookups")
    parts.append(clients_text(int(info.get("connected_clients", 0))))
    return [", ".join(parts)]
