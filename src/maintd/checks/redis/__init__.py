"""``redis``: PING latency and INFO: memory, hit ratio, evictions, clients, replication.

Counters (hits, misses, evictions, expirations, rejected connections) are
cumulative in Redis; this kind stores them raw as metrics and reports the
deltas against the previous run (``ctx.history``). A counter that went down
means the server restarted (or ``CONFIG RESETSTAT``): that is reported, and no
delta is computed for that interval. redis-py is imported only when a check
runs (``check`` holds what uses it).
"""

from __future__ import annotations

import asyncio
import importlib
import sys

from maintd.checks.base import CheckResult, Kind, RunContext
from maintd.checks.redis.config import RedisConfig

__all__ = ["KIND", "RedisCheck", "RedisConfig"]

_CHECK = "maintd.checks.redis.check"  # what uses redis-py


class RedisCheck:
    def __init__(self, config: RedisConfig) -> None:
        self.config = config

    async def run(self, ctx: RunContext) -> CheckResult:
        if _CHECK not in sys.modules:  # the first check imports redis-py, off the event loop
            await asyncio.to_thread(importlib.import_module, _CHECK)
        from maintd.checks.redis.check import run

        return await run(self.config, ctx)


KIND = Kind(
    name="redis",
    config=RedisConfig,
    build=RedisCheck,
    summary="PING latency, memory vs maxmemory, hit ratio, evictions, clients and replication of Redis",
)
