"""``redis``: PING latency and INFO: memory, hit ratio, evictions, clients, replication.

Counters (hits, misses, evictions, expirations, rejected connections) are
cumulative in Redis; this kind stores them raw as metrics and reports the
deltas against the previous run (``ctx.history``). A counter that went down
means the server restarted (or ``CONFIG RESETSTAT``): that is reported, and no
delta is computed for that interval. redis-py is imported only when a check
runs (``check`` holds what uses it).
"""

from __future__ import annotations

from maintd.checks.base import Kind, lazy
from maintd.checks.redis.config import RedisConfig

__all__ = ["KIND", "RedisCheck", "RedisConfig"]


KIND = Kind(
    name="redis",
    config=RedisConfig,
    build=lazy("maintd.checks.redis.check"),
    summary="PING latency, memory vs maxmemory, hit ratio, evictions, clients and replication of Redis",
)
