"""Counters between runs: Redis's are cumulative, so hits, misses, evictions, expirations and
rejected connections are judged by their deltas against the previous run that read them."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from maintd.checks.base import RunSample, Status
from maintd.checks.redis.config import RedisConfig
from maintd.checks.redis.report import Findings, ago
from maintd.clock import utc

COUNTERS = ("keyspace_hits", "keyspace_misses", "evicted_keys", "expired_keys", "rejected_connections")


def judge_counters(
    cfg: RedisConfig, info: dict[str, Any], history: list[RunSample], now: datetime, found: Findings
) -> None:
    current = {name: float(info.get(name, 0)) for name in COUNTERS}
    uptime = float(info.get("uptime_in_seconds", 0))
    found.metrics.update(current)
    found.metrics["uptime_in_seconds"] = uptime
    previous = next((s for s in history if all(name in s.metrics for name in COUNTERS)), None)
    if previous is None:
        found.add(Status.ok, "first run with counters: hit ratio and deltas start with the next run")
        return
    interval = now - utc(previous.started_at)
    since = f"since the previous run {ago(interval)}"
    went_down = [name for name in COUNTERS if current[name] < previous.metrics[name]]
    prev_uptime = previous.metrics.get("uptime_in_seconds")
    if prev_uptime is not None and uptime < prev_uptime:
        found.metrics["restarted"] = 1.0
        found.add(
            Status.warning if cfg.warn_on_restart else Status.ok,
            f"restarted {ago(timedelta(seconds=uptime))} (uptime {uptime:.0f}s, was {prev_uptime:.0f}s "
            f"{ago(interval)}): counters reset, no deltas this run",
        )
        return
    if went_down:
        found.metrics["restarted"] = 1.0
        found.add(
            Status.warning if cfg.warn_on_restart else Status.ok,
            f"counters went down {since} ({', '.join(went_down)}): restart or CONFIG RESETSTAT, "
            "no deltas this run",
        )
        return
    delta = {name: current[name] - previous.metrics[name] for name in COUNTERS}
    for name, value in delta.items():
        found.metrics[f"{name}_delta"] = value
    found.metrics["interval_seconds"] = interval.total_seconds()
    _hit_ratio(cfg, delta["keyspace_hits"], delta["keyspace_misses"], since, found)

    evicted = delta["evicted_keys"]
    status = Status.ok
    if cfg.warn_evictions is not None and evicted >= cfg.warn_evictions:
        status = Status.warning
    limit = f" (warning at {cfg.warn_evictions})" if cfg.warn_evictions is not None else ""
    policy = info.get("maxmemory_policy", "?")
    found.add(status, f"{evicted:.0f} keys evicted {since}, policy {policy}{limit}")
    found.add(Status.ok, f"{delta['expired_keys']:.0f} keys expired {since}")

    rejected = delta["rejected_connections"]
    status = Status.ok
    if cfg.warn_rejected_connections is not None and rejected >= cfg.warn_rejected_connections:
        status = Status.warning
    limit = f" (warning at {cfg.warn_rejected_connections})" if cfg.warn_rejected_connections else ""
    found.add(status, f"{rejected:.0f} connections rejected {since}{limit}")


def _hit_ratio(cfg: RedisConfig, hits: float, misses: float, since: str, found: Findings) -> None:
    lookups = hits + misses
    found.metrics["lookups"] = lookups
    if lookups == 0:
        found.add(Status.ok, f"no key lookups {since}: no hit ratio")
        return
    ratio = hits / lookups
    found.metrics["hit_ratio"] = round(ratio, 6)
    text = f"hit ratio {ratio:.1%} ({hits:.0f} hits, {misses:.0f} misses) {since}"
    if cfg.min_hit_ratio is None:
        found.add(Status.ok, text)
    elif lookups < cfg.min_lookups:
        found.add(Status.ok, f"{text}; too few lookups to judge (min_lookups {cfg.min_lookups})")
    elif ratio < cfg.min_hit_ratio:
        found.add(Status.warning, f"{text}, below min_hit_ratio {cfg.min_hit_ratio:.1%}")
    else:
        found.add(Status.ok, f"{text} (warning below {cfg.min_hit_ratio:.1%})")
