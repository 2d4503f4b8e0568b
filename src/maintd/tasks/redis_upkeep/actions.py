"""The safe actions, each only when its param enables it and fragmentation calls for it.

MEMORY PURGE asks jemalloc to return dirty pages to the system: no data moves, it
takes milliseconds, and repeating it is harmless. ``activedefrag yes`` is the one
configuration parameter set: it changes no data or semantics, its CPU use is
capped by active-defrag-cycle-min/max (1-25 % of a core by default), it is set at
runtime only (never CONFIG REWRITE, so a restart forgets it) and is undone with
``CONFIG SET activedefrag no``. maxmemory and maxmemory-policy are never set: a
lower maxmemory or another policy can evict or refuse writes at once.
"""

from __future__ import annotations

from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import ResponseError

from maintd.checks.base import Change, Status
from maintd.checks.redis.report import Findings
from maintd.tasks.redis_upkeep import RedisUpkeepConfig
from maintd.tasks.redis_upkeep.advice import fragmented, jemalloc


async def act(
    cfg: RedisUpkeepConfig,
    client: aioredis.Redis,
    info: dict[str, Any],
    where: str,
    dry_run: bool,
    found: Findings,
) -> list[Change]:
    """What the enabled actions did (or, in a dry run, would do) to the server at ``where``."""
    if not (cfg.memory_purge or cfg.active_defrag) or not fragmented(cfg, info):
        return []
    if not jemalloc(info):
        found.add(
            Status.ok,
            "no action: MEMORY PURGE and activedefrag need jemalloc, "
            f"allocator is {info.get('mem_allocator')}",
        )
        return []
    changes: list[Change] = []
    if cfg.memory_purge:
        try:
            changes.append(await _purge(client, info, where, dry_run, found))
        except ResponseError as exc:  # an ACL without +memory|purge: say so, the findings still count
            found.add(Status.warning, f"MEMORY PURGE refused: {exc}")
    if cfg.active_defrag:
        change = await _active_defrag(client, where, dry_run, found)
        if change is not None:
            changes.append(change)
    return changes


async def _purge(
    client: aioredis.Redis, info: dict[str, Any], where: str, dry_run: bool, found: Findings
) -> Change:
    before = {
        "mem_fragmentation_ratio": float(info.get("mem_fragmentation_ratio", 0)),
        "used_memory_rss": int(info.get("used_memory_rss", 0)),
    }
    if dry_run:
        found.add(Status.ok, "dry run: would run MEMORY PURGE")
        return Change("memory-purge", where, {"before": before})
    await client.execute_command("MEMORY PURGE")  # type: ignore[no-untyped-call]
    memory = await client.info("memory")
    after = {
        "mem_fragmentation_ratio": float(memory.get("mem_fragmentation_ratio", 0)),
        "used_memory_rss": int(memory.get("used_memory_rss", 0)),
    }
    found.metrics["purged_rss_bytes"] = float(before["used_memory_rss"] - after["used_memory_rss"])
    found.add(
        Status.ok,
        f"MEMORY PURGE: fragmentation ratio {before['mem_fragmentation_ratio']:.2f} -> "
        f"{after['mem_fragmentation_ratio']:.2f}, RSS {before['used_memory_rss']} -> "
        f"{after['used_memory_rss']} bytes",
    )
    return Change("memory-purge", where, {"before": before, "after": after})


async def _active_defrag(client: aioredis.Redis, where: str, dry_run: bool, found: Findings) -> Change | None:
    try:
        current = (await client.config_get("activedefrag")).get("activedefrag")
    except ResponseError as exc:
        found.add(Status.warning, f"CONFIG GET activedefrag refused: {exc}")
        return None
    if current == "yes":
        found.add(Status.ok, "activedefrag is already yes: nothing to set")
        return None
    change = Change(
        "config-set", where, {"parameter": "activedefrag", "from": current, "to": "yes", "persisted": False}
    )
    if dry_run:
        found.add(Status.ok, f"dry run: would CONFIG SET activedefrag yes (now {current})")
        return change
    try:
        await client.config_set("activedefrag", "yes")
    except ResponseError as exc:  # e.g. a distribution's Redis built with the system jemalloc
        found.add(Status.warning, f"CONFIG SET activedefrag yes refused: {exc}")
        return None
    found.add(Status.ok, f"CONFIG SET activedefrag yes (was {current}; runtime only, not in redis.conf)")
    return change
