"""The recommendations: each rule reads INFO (and the deltas and the key sample) and may add one."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from maintd.checks.base import Status, format_bytes
from maintd.checks.redis.report import Findings
from maintd.tasks.redis_upkeep import RedisUpkeepConfig
from maintd.tasks.redis_upkeep.sample import Sample


@dataclass(frozen=True)
class Recommendation:
    """One structured finding: ``code`` is stable (metrics ``recommend_<code>``), ``text`` says why,
    ``action`` what would help."""

    code: str
    status: Status
    text: str
    action: str

    def line(self) -> str:
        return f"recommend [{self.code}]: {self.text}: {self.action}"


def jemalloc(info: dict[str, Any]) -> bool:
    return str(info.get("mem_allocator", "")).startswith("jemalloc")


def fragmented(cfg: RedisUpkeepConfig, info: dict[str, Any]) -> bool:
    ratio = float(info.get("mem_fragmentation_ratio", 0))
    wasted = int(info.get("mem_fragmentation_bytes", 0))
    return ratio > cfg.frag_ratio and wasted >= cfg.frag_min_bytes


def recommend(
    cfg: RedisUpkeepConfig, info: dict[str, Any], db: int, sample: Sample | None, found: Findings
) -> list[Recommendation]:
    """Every rule in turn; the metrics they read are already in ``found.metrics``."""
    advice: list[Recommendation] = []
    for rule in (_fragmentation, _swapping, _maxmemory, _evictions, _hit_ratio):
        one = rule(cfg, info, found.metrics)
        if one is not None:
            advice.append(one)
    advice += _keys(cfg, info, db, sample)
    return advice


def _fragmentation(
    cfg: RedisUpkeepConfig, info: dict[str, Any], m: dict[str, float]
) -> Recommendation | None:
    if not fragmented(cfg, info):
        return None
    ratio = float(info.get("mem_fragmentation_ratio", 0))
    wasted = int(info.get("mem_fragmentation_bytes", 0))
    allocator = str(info.get("mem_allocator", "?"))
    text = (
        f"mem_fragmentation_ratio {ratio:.2f} (above {cfg.frag_ratio:g}), "
        f"{format_bytes(wasted)} more resident than used, allocator {allocator}"
    )
    if not jemalloc(info):
        return Recommendation(
            "fragmentation",
            Status.warning,
            text,
            "only a restart gives the memory back with this allocator (fail over to a replica first)",
        )
    action = "MEMORY PURGE returns jemalloc's dirty pages to the system"
    if float(info.get("allocator_frag_ratio", 0)) > 1.1 and info.get("active_defrag_running") == 0:
        action += "; CONFIG SET activedefrag yes moves live values to compact the heap"
    return Recommendation("fragmentation", Status.warning, text, action)


def _swapping(cfg: RedisUpkeepConfig, info: dict[str, Any], m: dict[str, float]) -> Recommendation | None:
    ratio = float(info.get("mem_fragmentation_ratio", 1))
    used = int(info.get("used_memory", 0))
    if not 0 < ratio < 1 or used < cfg.frag_min_bytes:
        return None
    return Recommendation(
        "swapping",
        Status.warning,
        f"resident memory is {ratio:.2f} of used_memory {format_bytes(used)}: part of Redis is swapped out",
        "give the host more memory or lower maxmemory; disable swap for Redis hosts",
    )


def _maxmemory(cfg: RedisUpkeepConfig, info: dict[str, Any], m: dict[str, float]) -> Recommendation | None:
    policy = str(info.get("maxmemory_policy", "?"))
    limit = int(info.get("maxmemory", 0))
    if limit <= 0:
        system = int(info.get("total_system_memory", 0))
        of = f" of the host's {format_bytes(system)}" if system else ""
        return Recommendation(
            "no_maxmemory",
            Status.ok,
            f"maxmemory is 0: Redis may grow until the kernel's OOM killer ends it (policy {policy})",
            f"set maxmemory below the memory Redis may use{of}, leaving room for fork and buffers",
        )
    percent = 100.0 * int(info.get("used_memory", 0)) / limit
    if policy == "noeviction" and percent >= cfg.full_percent:
        return Recommendation(
            "noeviction_full",
            Status.warning,
            f"{percent:.1f}% of maxmemory {format_bytes(limit)} used under policy noeviction: "
            "writes fail with OOM errors at 100%",
            "raise maxmemory, delete or expire data, or (for a cache) use an allkeys-lru/lfu policy",
        )
    return None


def _evictions(cfg: RedisUpkeepConfig, info: dict[str, Any], m: dict[str, float]) -> Recommendation | None:
    evicted = m.get("evicted_keys_delta", 0.0)
    if evicted <= 0:
        return None
    policy = str(info.get("maxmemory_policy", "?"))
    text = f"{evicted:.0f} keys evicted since the previous run under policy {policy}"
    if policy.startswith("allkeys"):
        share = m.get("keyspace_no_ttl_share")
        if share is not None and share >= 0.5:
            return Recommendation(
                "evictions_policy",
                Status.warning,
                f"{text}, and {share:.0%} of the keys have no TTL (data, not cache?)",
                "if these keys must stay: raise maxmemory, or use noeviction or a volatile-* policy",
            )
    return Recommendation(
        "evictions",
        Status.warning,
        text,
        "maxmemory is smaller than the working set: raise it, or shorten TTLs of what is cached",
    )


def _hit_ratio(cfg: RedisUpkeepConfig, info: dict[str, Any], m: dict[str, float]) -> Recommendation | None:
    ratio, lookups = m.get("hit_ratio"), m.get("lookups", 0.0)
    if cfg.min_hit_ratio is None or ratio is None or lookups < cfg.min_lookups or ratio >= cfg.min_hit_ratio:
        return None
    evicted = m.get("evicted_keys_delta", 0.0)
    why = "keys are evicted before they are read again" if evicted else "lookups of keys never written"
    return Recommendation(
        "low_hit_ratio",
        Status.warning,
        f"hit ratio {ratio:.1%} of {lookups:.0f} lookups since the previous run "
        f"(below {cfg.min_hit_ratio:.0%})",
        f"look for {why}, TTLs shorter than the reuse interval, or keys that differ per request",
    )


def _keys(
    cfg: RedisUpkeepConfig, info: dict[str, Any], db: int, sample: Sample | None
) -> list[Recommendation]:
    found: list[Recommendation] = []
    if sample is None or not sample.keys:
        return found
    policy = str(info.get("maxmemory_policy", "?"))
    share = sample.no_ttl_share or 0.0
    if policy.startswith("volatile") and share >= cfg.no_ttl_share:
        found.append(
            Recommendation(
                "no_ttl",
                Status.warning,
                f"{share:.0%} of {sample.keys} sampled keys in db {db} have no TTL under policy {policy}, "
                "which evicts only keys with one",
                "set TTLs on cached keys, or use an allkeys-lru/lfu policy",
            )
        )
    big = [(size, key) for size, key in sample.biggest if size >= cfg.big_key_bytes]
    if big:
        named = ", ".join(f"{key} ({format_bytes(size)})" for size, key in big[: cfg.list_limit])
        more = f" and {sample.big - len(big[: cfg.list_limit])} more" if sample.big > cfg.list_limit else ""
        found.append(
            Recommendation(
                "big_keys",
                Status.warning,
                f"{sample.big} sampled key{' uses' if sample.big == 1 else 's use'} "
                f"{format_bytes(cfg.big_key_bytes)} or more: {named}{more}",
                "split them (a big key blocks the server while it is read, deleted or migrated); "
                "delete them with UNLINK",
            )
        )
    return found
