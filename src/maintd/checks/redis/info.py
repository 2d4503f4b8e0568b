"""Judging one INFO reply: memory against maxmemory, clients against maxclients, and replication
on either side (a replica also reads its master's offset, with the same credentials)."""

from __future__ import annotations

import asyncio
from typing import Any

from maintd.checks.base import Status, format_bytes
from maintd.checks.redis.config import RedisConfig
from maintd.checks.redis.connection import Endpoint, RedisError, connect
from maintd.checks.redis.report import Findings, clients_text, in_seconds, limits, upper


def judge_memory(cfg: RedisConfig, info: dict[str, Any], found: Findings) -> None:
    used, limit = int(info.get("used_memory", 0)), int(info.get("maxmemory", 0))
    found.metrics.update(used_memory=float(used), maxmemory=float(limit))
    policy = info.get("maxmemory_policy", "?")
    if limit <= 0:
        system = int(info.get("total_system_memory", 0))
        of_system = f", {100.0 * used / system:.1f}% of system memory" if system else ""
        found.add(Status.ok, f"memory {format_bytes(used)} used, maxmemory 0: unbounded{of_system}")
        return
    percent = 100.0 * used / limit
    found.metrics["memory_percent"] = round(percent, 2)
    found.add(
        upper(percent, cfg.warn_memory_percent, cfg.crit_memory_percent),
        f"memory {percent:.1f}% of maxmemory {format_bytes(limit)}"
        + limits(cfg.warn_memory_percent, cfg.crit_memory_percent, lambda v: f"{v:g}%")
        + f", {format_bytes(used)} used, policy {policy}",
    )


def judge_clients(cfg: RedisConfig, info: dict[str, Any], found: Findings) -> None:
    clients = int(info.get("connected_clients", 0))
    found.metrics["connected_clients"] = float(clients)
    limit = int(info.get("maxclients", 0))
    if limit <= 0:  # servers before 7.0 do not show maxclients in INFO
        found.add(Status.ok, f"{clients_text(clients)} connected")
        return
    percent = 100.0 * clients / limit
    found.metrics.update(maxclients=float(limit), clients_percent=round(percent, 2))
    found.add(
        upper(percent, cfg.warn_clients_percent, cfg.crit_clients_percent),
        f"{clients_text(clients)} connected, {percent:.1f}% of maxclients {limit}"
        + limits(cfg.warn_clients_percent, cfg.crit_clients_percent, lambda v: f"{v:g}%"),
    )


async def judge_replication(
    cfg: RedisConfig,
    info: dict[str, Any],
    endpoint: Endpoint,
    password: str | None,
    budget: float,
    found: Findings,
) -> None:
    role = "replica" if info.get("role") == "slave" else str(info.get("role"))
    found.metrics["is_replica"] = 1.0 if role == "replica" else 0.0
    if cfg.expect_role != "any" and role != cfg.expect_role:
        found.add(Status.critical, f"role is {role}, expected {cfg.expect_role}")
    if role == "replica":
        await _replica(cfg, info, endpoint, password, budget, found)
    elif role == "master":
        _master(cfg, info, found)


async def _replica(
    cfg: RedisConfig,
    info: dict[str, Any],
    endpoint: Endpoint,
    password: str | None,
    budget: float,
    found: Findings,
) -> None:
    master = f"{info.get('master_host')}:{info.get('master_port')}"
    if info.get("master_link_status") != "up":
        found.metrics["master_link_up"] = 0.0
        down = info.get("master_link_down_since_seconds")
        for_how_long = f" for {down}s" if isinstance(down, int) and down >= 0 else ""
        syncing = ", initial sync in progress" if info.get("master_sync_in_progress") == 1 else ""
        found.add(Status.critical, f"link to master {master} is down{for_how_long}{syncing}")
        return
    found.metrics["master_link_up"] = 1.0
    last_io = float(info.get("master_last_io_seconds_ago", 0))
    found.metrics["master_last_io_seconds"] = last_io
    warn, crit = in_seconds(cfg.warn_lag), in_seconds(cfg.crit_lag)
    found.add(
        upper(last_io, warn, crit),
        f"link to master {master} up, last I/O {last_io:.0f}s ago{limits(warn, crit, lambda v: f'{v:g}s')}",
    )
    if not cfg.lag_from_master:
        return
    offset = info.get("slave_repl_offset", info.get("master_repl_offset"))
    master_offset = await _master_offset(info, endpoint, password, min(2.0, budget / 3))
    if master_offset is None or not isinstance(offset, int):
        found.add(Status.ok, f"master {master} not readable from here: no lag in bytes")
        return
    lag = max(0, master_offset - offset)
    _lag_bytes(cfg, float(lag), f"{lag} bytes behind master {master}", found)


async def _master_offset(
    info: dict[str, Any], endpoint: Endpoint, password: str | None, timeout: float
) -> int | None:
    host, port = info.get("master_host"), info.get("master_port")
    if not isinstance(host, str) or not isinstance(port, int) or timeout <= 0:
        return None
    master = endpoint.elsewhere(host, port)
    try:
        async with asyncio.timeout(timeout):
            client = connect(master, password, timeout=timeout)
            try:
                replication = await client.info("replication")
            finally:
                await client.aclose()
    except (RedisError, OSError, TimeoutError):
        return None
    offset = replication.get("master_repl_offset")
    return offset if isinstance(offset, int) else None


def _master(cfg: RedisConfig, info: dict[str, Any], found: Findings) -> None:
    replicas = [
        v for k, v in info.items() if k.startswith("slave") and k[5:].isdigit() and isinstance(v, dict)
    ]
    online = [r for r in replicas if r.get("state") == "online"]
    found.metrics["connected_replicas"] = float(len(online))
    names = ", ".join(f"{r.get('ip')}:{r.get('port')} {r.get('state')}" for r in replicas) or "none"
    text = f"{len(online)} of {len(replicas)} replicas online: {names}"
    if len(online) < cfg.min_replicas:
        found.add(Status.critical, f"{text}, fewer than min_replicas {cfg.min_replicas}")
    elif cfg.min_replicas or replicas:
        found.add(Status.ok, text + (f" (min_replicas {cfg.min_replicas})" if cfg.min_replicas else ""))
    if not online:
        return
    master_offset = info.get("master_repl_offset")
    lag_seconds = max(float(r.get("lag", 0)) for r in online)
    found.metrics["replica_lag_seconds"] = lag_seconds
    warn, crit = in_seconds(cfg.warn_lag), in_seconds(cfg.crit_lag)
    found.add(
        upper(lag_seconds, warn, crit),
        f"slowest replica acknowledged {lag_seconds:.0f}s ago{limits(warn, crit, lambda v: f'{v:g}s')}",
    )
    offsets = [r["offset"] for r in online if isinstance(r.get("offset"), int)]
    if isinstance(master_offset, int) and offsets:
        lag = max(0, master_offset - min(offsets))
        _lag_bytes(cfg, float(lag), f"slowest replica {lag} bytes behind", found)


def _lag_bytes(cfg: RedisConfig, lag: float, text: str, found: Findings) -> None:
    found.metrics["lag_bytes"] = lag
    warn = float(cfg.warn_lag_bytes) if cfg.warn_lag_bytes is not None else None
    crit = float(cfg.crit_lag_bytes) if cfg.crit_lag_bytes is not None else None
    found.add(upper(lag, warn, crit), text + limits(warn, crit, lambda v: f"{v:.0f} bytes"))
