"""``redis-upkeep``: what a Redis needs looked after, as recommendations; a few safe actions on request.

Reads INFO through the ``redis`` check's connection code and judges the counters
(hit ratio, evictions, expired keys) against the previous run with its delta
code; then fragmentation, the maxmemory policy against what the keys look like
(a bounded SCAN sample: share without a TTL, biggest by MEMORY USAGE). Each
finding is a structured recommendation (a code, a status, a text, the action
that would help) in the output and as ``recommend_<code>`` metrics. Only when
the params enable them: MEMORY PURGE and ``CONFIG SET activedefrag yes`` (the
one configuration parameter changed: see docs/kinds/redis-upkeep.md), each a
Change, honouring dry run. redis-py is imported when a run starts.
"""

from __future__ import annotations

from pydantic import Field

from maintd.checks.base import Kind, lazy
from maintd.plan.base import StrictModel

__all__ = ["KIND", "RedisUpkeepConfig"]


class RedisUpkeepConfig(StrictModel):
    password_secret: str = Field(
        default="password",
        description="name of the target secret holding the password; used only when the target has it",
    )
    username: str | None = Field(
        default=None, description="ACL user; default: the target's connection.username or the url's"
    )
    verify_tls: bool = Field(default=True, description="verify the server certificate (rediss:// or tls)")
    min_hit_ratio: float | None = Field(
        default=0.8,
        ge=0,
        le=1,
        description="recommend (warning) below this hits / (hits + misses) since the previous run; null: off",
    )
    min_lookups: int = Field(
        default=1000, ge=0, description="min_hit_ratio applies only with at least this many lookups"
    )
    frag_ratio: float = Field(
        default=1.5, gt=1, description="recommend (warning) above this mem_fragmentation_ratio"
    )
    frag_min_bytes: int = Field(
        default=100 * 2**20,
        ge=0,
        description="... and only with at least this many bytes fragmented (small servers always look "
        "fragmented: the process's baseline RSS against a few MB of data)",
    )
    full_percent: float = Field(
        default=90.0,
        gt=0,
        le=100,
        description="with policy noeviction: recommend (warning) at or above this used_memory / maxmemory",
    )
    sample_keys: int = Field(
        default=1000, ge=0, le=1_000_000, description="most keys sampled by SCAN for TTLs and sizes; 0: none"
    )
    sample_seconds: float = Field(
        default=2.0, gt=0, le=300, description="most time spent sampling (the run's deadline also bounds it)"
    )
    sample_match: str | None = Field(
        default=None, description="SCAN MATCH pattern: sample only these keys, e.g. 'session:*'"
    )
    no_ttl_share: float = Field(
        default=0.5,
        ge=0,
        le=1,
        description="with a volatile-* policy: recommend (warning) when at least this share of sampled "
        "keys has no TTL",
    )
    big_key_bytes: int = Field(
        default=10 * 2**20, ge=1, description="recommend (warning) for sampled keys using at least this much"
    )
    memory_purge: bool = Field(
        default=False,
        description="run MEMORY PURGE (jemalloc only) when fragmentation is recommended against",
    )
    active_defrag: bool = Field(
        default=False,
        description="CONFIG SET activedefrag yes (runtime only, not written to redis.conf) when "
        "fragmentation is recommended against and the allocator can defragment",
    )
    list_limit: int = Field(default=5, ge=1, le=100, description="most big keys named in the output")


KIND = Kind(
    name="redis-upkeep",
    config=RedisUpkeepConfig,
    build=lazy("maintd.tasks.redis_upkeep.upkeep"),
    summary="Redis hit ratio, evictions, fragmentation, maxmemory policy, TTL and big-key sampling; "
    "recommendations, optional MEMORY PURGE / activedefrag",
    changes=lambda config: config.memory_purge or config.active_defrag,
)
