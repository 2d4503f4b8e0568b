"""One upkeep run: INFO and the counters' deltas (the ``redis`` check's code), a key sample,
the recommendations, then the enabled actions."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import ResponseError

from maintd.checks.base import Change, CheckResult, RunContext, Status, format_bytes
from maintd.checks.redis.config import RedisConfig
from maintd.checks.redis.connection import (
    AuthenticationError,
    Endpoint,
    RedisError,
    connect,
    describe_error,
    endpoint_of,
)
from maintd.checks.redis.deltas import COUNTERS, judge_counters
from maintd.checks.redis.report import Findings
from maintd.tasks.redis_upkeep import RedisUpkeepConfig
from maintd.tasks.redis_upkeep.actions import act
from maintd.tasks.redis_upkeep.advice import recommend
from maintd.tasks.redis_upkeep.sample import Sample, sample_keys

HISTORY_LOOKBACK = 5  # earlier runs searched for the newest one that read the counters
_MEMORY_METRICS = (
    "used_memory",
    "used_memory_rss",
    "maxmemory",
    "mem_fragmentation_ratio",
    "mem_fragmentation_bytes",
    "allocator_frag_ratio",
)


async def run(cfg: RedisUpkeepConfig, ctx: RunContext) -> CheckResult:
    try:
        endpoint = endpoint_of(ctx.target.connection, cfg.username, cfg.verify_tls)
    except ValueError as exc:
        return CheckResult(Status.unknown, f"redis-upkeep on target {ctx.target.name}: {exc}")
    password = endpoint.password
    if cfg.password_secret in ctx.target.secrets:
        try:
            password = ctx.secret(cfg.password_secret)
        except LookupError as exc:
            return CheckResult(Status.unknown, f"redis-upkeep {endpoint}: {exc}")
    budget = ctx.seconds_left()
    budget -= min(0.5, budget * 0.1)  # answer before the runner cuts the run off
    if budget <= 0:
        return CheckResult(Status.unknown, f"redis-upkeep {endpoint}: no time left before the deadline")
    found, changes = Findings(), list[Change]()
    try:
        async with asyncio.timeout(budget):
            client = connect(endpoint, password, timeout=budget, db=endpoint.db)  # SCAN reads its keys
            try:
                info = await _observe(cfg, ctx, client, endpoint, budget, found)
                changes = await act(cfg, client, info, str(endpoint), ctx.dry_run, found)
            finally:
                await client.aclose()
    except AuthenticationError as exc:
        why = describe_error(exc, budget)
        if password is None:
            why = (
                f"authentication required and no password: target {ctx.target.name} has no secret "
                f"named {cfg.password_secret!r} (param password_secret)"
            )
        return CheckResult(Status.critical, f"redis-upkeep {endpoint}: {why}")
    except (RedisError, OSError, TimeoutError) as exc:
        return CheckResult(Status.critical, f"redis-upkeep {endpoint}: {describe_error(exc, budget)}")
    result = found.result(f"redis-upkeep {endpoint} db {endpoint.db}", [_headline(found.metrics, info)])
    result.changes = changes
    return result


async def _observe(
    cfg: RedisUpkeepConfig,
    ctx: RunContext,
    client: aioredis.Redis,
    endpoint: Endpoint,
    budget: float,
    found: Findings,
) -> dict[str, Any]:
    started = time.monotonic()
    info: dict[str, Any] = await client.info()
    # The check's delta code reports hit ratio, evictions and expirations; judging is left to the
    # recommendations here (restarts and rejected connections are the redis check's business).
    counters = RedisConfig(min_hit_ratio=None, warn_rejected_connections=None, warn_on_restart=False)
    judge_counters(counters, info, await ctx.history(HISTORY_LOOKBACK), ctx.clock.now(), found)
    for name in _MEMORY_METRICS:
        if isinstance(info.get(name), int | float):
            found.metrics[name] = float(info[name])
    keyspace = info.get(f"db{endpoint.db}")
    keys = int(keyspace.get("keys", 0)) if isinstance(keyspace, dict) else 0
    expires = int(keyspace.get("expires", 0)) if isinstance(keyspace, dict) else 0
    found.metrics.update(keyspace_keys=float(keys), keyspace_expires=float(expires))
    if keys:
        found.metrics["keyspace_no_ttl_share"] = round(1 - expires / keys, 6)
    found.add(
        Status.ok,
        f"db {endpoint.db}: {keys} keys, {expires} with a TTL; policy {info.get('maxmemory_policy', '?')}",
    )
    left = budget - (time.monotonic() - started)
    sample = await _sample(cfg, client, min(cfg.sample_seconds, left / 2), found)
    if sample is not None:
        # TTL counts as a keyspace hit or miss: the counters kept for the next run's deltas are the ones
        # after the sample, so this run's own lookups never lower the next run's hit ratio.
        stats = await client.info("stats")
        found.metrics.update({name: float(stats.get(name, 0)) for name in COUNTERS})
    advice = recommend(cfg, info, endpoint.db, sample, found)
    for one in advice:
        found.add(one.status, one.line())
        found.metrics[f"recommend_{one.code}"] = 1.0
    found.metrics["recommendations"] = float(len(advice))
    return info


async def _sample(
    cfg: RedisUpkeepConfig, client: aioredis.Redis, seconds: float, found: Findings
) -> Sample | None:
    if cfg.sample_keys == 0 or seconds <= 0:
        return None
    try:
        sample = await sample_keys(
            client,
            limit=cfg.sample_keys,
            seconds=seconds,
            match=cfg.sample_match,
            keep=cfg.list_limit,
            big_bytes=cfg.big_key_bytes,
        )
    except ResponseError as exc:  # an ACL without +scan / +memory: the rest of the run still counts
        found.add(Status.ok, f"keys not sampled: {exc}")
        return None
    found.metrics.update(
        sampled_keys=float(sample.keys),
        sample_seconds=round(sample.seconds, 6),
        sample_big_keys=float(sample.big),
    )
    share = sample.no_ttl_share
    if share is not None:
        found.metrics["sample_no_ttl_share"] = round(share, 6)
    whole = (
        "the whole keyspace" if sample.complete else f"stopped at {cfg.sample_keys} keys or the time budget"
    )
    match = f" matching {cfg.sample_match!r}" if cfg.sample_match else ""
    no_ttl = f", {sample.no_ttl} without a TTL" if sample.keys else ""
    found.add(Status.ok, f"sampled {sample.keys} keys{match} in {sample.seconds:.2f}s ({whole}){no_ttl}")
    return sample


def _headline(metrics: dict[str, float], info: dict[str, Any]) -> str:
    parts = [f"fragmentation {metrics.get('mem_fragmentation_ratio', 0):.2f}"]
    used = format_bytes(metrics.get("used_memory", 0))
    limit = metrics.get("maxmemory", 0)
    parts.append(f"memory {used} of {format_bytes(limit)}" if limit else f"memory {used} (maxmemory 0)")
    parts.append(f"policy {info.get('maxmemory_policy', '?')}")
    if "hit_ratio" in metrics:
        parts.append(f"hit ratio {metrics['hit_ratio']:.1%}")
    count = int(metrics.get("recommendations", 0))
    parts.append(f"{count} recommendation{'' if count == 1 else 's'}")
    return ", ".join(parts)
