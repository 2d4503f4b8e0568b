"""``redis``: PING latency and INFO: memory, hit ratio, evictions, clients, replication.

Counters (hits, misses, evictions, expirations, rejected connections) are
cumulative in Redis; this kind stores them raw as metrics and reports the
deltas against the previous run (``ctx.history``). A counter that went down
means the server restarted (or ``CONFIG RESETSTAT``): that is reported, and no
delta is computed for that interval.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from pydantic import Field

from maintd.checks.base import CheckResult, Kind, RunContext, RunSample, Status
from maintd.checks.redis.connection import (
    AuthenticationError,
    Endpoint,
    RedisError,
    connect,
    describe_error,
    endpoint_of,
)
from maintd.clock import utc
from maintd.plan.base import StrictModel
from maintd.plan.types import Duration

COUNTERS = ("keyspace_hits", "keyspace_misses", "evicted_keys", "expired_keys", "rejected_connections")
HISTORY_LOOKBACK = 5  # earlier runs searched for the newest one that read the counters


class RedisConfig(StrictModel):
    password_secret: str = Field(
        default="password",
        description="name of the target secret holding the password; used only when the target has it",
    )
    username: str | None = Field(
        default=None, description="ACL user; default: the target's connection.username or the url's"
    )
    verify_tls: bool = Field(default=True, description="verify the server certificate (rediss:// or tls)")
    warn_latency: Duration | None = Field(default=None, description="warning at or above this PING time")
    crit_latency: Duration | None = Field(default=None, description="critical at or above this PING time")
    warn_memory_percent: float = Field(
        default=80.0, gt=0, le=100, description="warning at or above this used_memory / maxmemory"
    )
    crit_memory_percent: float = Field(
        default=90.0, gt=0, le=100, description="critical at or above this used_memory / maxmemory"
    )
    min_hit_ratio: float | None = Field(
        default=None,
        ge=0,
        le=1,
        description="warning below this hits / (hits + misses) since the previous run (0..1)",
    )
    min_lookups: int = Field(
        default=100, ge=0, description="min_hit_ratio applies only with at least this many lookups"
    )
    warn_evictions: int | None = Field(
        default=None, ge=1, description="warning at or above this many keys evicted since the previous run"
    )
    warn_rejected_connections: int | None = Field(
        default=1,
        ge=1,
        description="warning at or above this many connections rejected since the previous run",
    )
    warn_on_restart: bool = Field(
        default=True, description="a restart (or reset counters) since the previous run is a warning"
    )
    warn_clients_percent: float = Field(
        default=80.0, gt=0, le=100, description="warning at or above this connected_clients / maxclients"
    )
    crit_clients_percent: float = Field(
        default=95.0, gt=0, le=100, description="critical at or above this connected_clients / maxclients"
    )
    expect_role: Literal["master", "replica", "any"] = Field(
        default="any", description="critical when the server has another role"
    )
    min_replicas: int = Field(
        default=0, ge=0, description="on a master: critical below this many online replicas"
    )
    warn_lag: Duration | None = Field(
        default=timedelta(seconds=30),
        description="replication lag in time: on a replica master_last_io_seconds_ago, "
        "on a master the largest replica lag",
    )
    crit_lag: Duration | None = Field(default=None, description="critical at or above this replication lag")
    warn_lag_bytes: int | None = Field(
        default=None, ge=0, description="warning at or above this replication offset difference"
    )
    crit_lag_bytes: int | None = Field(
        default=None, ge=0, description="critical at or above this replication offset difference"
    )
    lag_from_master: bool = Field(
        default=True,
        description="on a replica with its link up, read the master's offset for lag_bytes "
        "(same credentials)",
    )


@dataclass
class Findings:
    """What one run found: each line has a status; the worst decides, the problems lead the summary."""

    lines: list[tuple[Status, str]] = field(default_factory=list)
    metrics: dict[str, float] = field(default_factory=dict)

    def add(self, status: Status, text: str) -> None:
        self.lines.append((status, text))

    @property
    def status(self) -> Status:
        return max((s for s, _ in self.lines), key=lambda s: s.rank, default=Status.ok)

    def result(self, where: str, headline: list[str]) -> CheckResult:
        status = self.status
        worst_first = sorted(self.lines, key=lambda line: -line[0].rank)
        problems = [t for s, t in worst_first if s is not Status.ok]
        summary = f"{where}: " + "; ".join(problems or headline)
        details = [f"{s.value.upper()}: {t}" if s is not Status.ok else t for s, t in self.lines]
        return CheckResult(status, "\n".join([summary, *details]), self.metrics)


class RedisCheck:
    def __init__(self, config: RedisConfig) -> None:
        self.config = config

    async def run(self, ctx: RunContext) -> CheckResult:
        now = ctx.clock.now()
        try:
            endpoint = endpoint_of(ctx.target.connection, self.config.username, self.config.verify_tls)
        except ValueError as exc:
            return CheckResult(Status.unknown, f"redis on target {ctx.target.name}: {exc}")
        password = endpoint.password
        if self.config.password_secret in ctx.target.secrets:
            try:
                password = ctx.secret(self.config.password_secret)
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
                await self._judge(info, ping, history, now, endpoint, password, budget, started, found)
        except AuthenticationError as exc:
            if password is None:
                why = (
                    f"authentication required and no password: target {ctx.target.name} has no secret "
                    f"named {self.config.password_secret!r} (param password_secret)"
                )
            else:
                why = describe_error(exc, budget)
            return CheckResult(Status.critical, f"redis {endpoint}: {why}")
        except (RedisError, OSError, TimeoutError) as exc:
            return CheckResult(Status.critical, f"redis {endpoint}: {describe_error(exc, budget)}")
        role = "replica" if info.get("role") == "slave" else str(info.get("role", "unknown"))
        return found.result(f"redis {endpoint} ({role})", self._headline(found.metrics, info))

    async def _judge(
        self,
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
        cfg = self.config
        found.add(
            _upper(ping, _seconds(cfg.warn_latency), _seconds(cfg.crit_latency)),
            f"ping {_ms(ping)}{_limits(_seconds(cfg.warn_latency), _seconds(cfg.crit_latency), _ms)}",
        )
        _memory(cfg, info, found)
        _clients(cfg, info, found)
        _counters(cfg, info, history, now, found)
        await _replication(cfg, info, endpoint, password, budget - (time.monotonic() - started), found)

    @staticmethod
    def _headline(metrics: dict[str, float], info: dict[str, Any]) -> list[str]:
        parts = [f"ping {_ms(metrics['ping_seconds'])}"]
        if "memory_percent" in metrics:
            parts.append(f"memory {metrics['memory_percent']:.1f}% of {_bytes(metrics['maxmemory'])}")
        else:
            parts.append(f"memory {_bytes(metrics['used_memory'])} (maxmemory 0: unbounded)")
        if "hit_ratio" in metrics:
            parts.append(f"hit ratio {metrics['hit_ratio']:.1%} of {metrics['lookups']:.0f} lookups")
        parts.append(_clients_text(int(info.get("connected_clients", 0))))
        return [", ".join(parts)]


def _memory(cfg: RedisConfig, info: dict[str, Any], found: Findings) -> None:
    used, limit = int(info.get("used_memory", 0)), int(info.get("maxmemory", 0))
    found.metrics.update(used_memory=float(used), maxmemory=float(limit))
    policy = info.get("maxmemory_policy", "?")
    if limit <= 0:
        system = int(info.get("total_system_memory", 0))
        of_system = f", {100.0 * used / system:.1f}% of system memory" if system else ""
        found.add(Status.ok, f"memory {_bytes(used)} used, maxmemory 0: unbounded{of_system}")
        return
    percent = 100.0 * used / limit
    found.metrics["memory_percent"] = round(percent, 2)
    found.add(
        _upper(percent, cfg.warn_memory_percent, cfg.crit_memory_percent),
        f"memory {percent:.1f}% of maxmemory {_bytes(limit)}"
        + _limits(cfg.warn_memory_percent, cfg.crit_memory_percent, lambda v: f"{v:g}%")
        + f", {_bytes(used)} used, policy {policy}",
    )


def _clients(cfg: RedisConfig, info: dict[str, Any], found: Findings) -> None:
    clients = int(info.get("connected_clients", 0))
    found.metrics["connected_clients"] = float(clients)
    limit = int(info.get("maxclients", 0))
    if limit <= 0:  # servers before 7.0 do not show maxclients in INFO
        found.add(Status.ok, f"{_clients_text(clients)} connected")
        return
    percent = 100.0 * clients / limit
    found.metrics.update(maxclients=float(limit), clients_percent=round(percent, 2))
    found.add(
        _upper(percent, cfg.warn_clients_percent, cfg.crit_clients_percent),
        f"{_clients_text(clients)} connected, {percent:.1f}% of maxclients {limit}"
        + _limits(cfg.warn_clients_percent, cfg.crit_clients_percent, lambda v: f"{v:g}%"),
    )


def _counters(
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
    since = f"since the previous run {_ago(interval)}"
    went_down = [name for name in COUNTERS if current[name] < previous.metrics[name]]
    prev_uptime = previous.metrics.get("uptime_in_seconds")
    if prev_uptime is not None and uptime < prev_uptime:
        found.metrics["restarted"] = 1.0
        found.add(
            Status.warning if cfg.warn_on_restart else Status.ok,
            f"restarted {_ago(timedelta(seconds=uptime))} (uptime {uptime:.0f}s, was {prev_uptime:.0f}s "
            f"{_ago(interval)}): counters reset, no deltas this run",
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


async def _replication(
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
    warn, crit = _seconds(cfg.warn_lag), _seconds(cfg.crit_lag)
    found.add(
        _upper(last_io, warn, crit),
        f"link to master {master} up, last I/O {last_io:.0f}s ago{_limits(warn, crit, lambda v: f'{v:g}s')}",
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
    warn, crit = _seconds(cfg.warn_lag), _seconds(cfg.crit_lag)
    found.add(
        _upper(lag_seconds, warn, crit),
        f"slowest replica acknowledged {lag_seconds:.0f}s ago{_limits(warn, crit, lambda v: f'{v:g}s')}",
    )
    offsets = [r["offset"] for r in online if isinstance(r.get("offset"), int)]
    if isinstance(master_offset, int) and offsets:
        lag = max(0, master_offset - min(offsets))
        _lag_bytes(cfg, float(lag), f"slowest replica {lag} bytes behind", found)


def _lag_bytes(cfg: RedisConfig, lag: float, text: str, found: Findings) -> None:
    found.metrics["lag_bytes"] = lag
    warn = float(cfg.warn_lag_bytes) if cfg.warn_lag_bytes is not None else None
    crit = float(cfg.crit_lag_bytes) if cfg.crit_lag_bytes is not None else None
    found.add(_upper(lag, warn, crit), text + _limits(warn, crit, lambda v: f"{v:.0f} bytes"))


def _clients_text(clients: int) -> str:
    return f"{clients} client{'' if clients == 1 else 's'}"


def _upper(value: float, warn: float | None, crit: float | None) -> Status:
    if crit is not None and value >= crit:
        return Status.critical
    if warn is not None and value >= warn:
        return Status.warning
    return Status.ok


def _limits(warn: float | None, crit: float | None, fmt: Any) -> str:
    parts = [
        f"warning at {fmt(warn)}" if warn is not None else "",
        f"critical at {fmt(crit)}" if crit is not None else "",
    ]
    shown = [p for p in parts if p]
    return f" ({', '.join(shown)})" if shown else ""


def _seconds(value: timedelta | None) -> float | None:
    return value.total_seconds() if value is not None else None


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


def _bytes(value: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(value) < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TiB"  # pragma: no cover


def _ago(interval: timedelta) -> str:
    seconds = max(0, int(interval.total_seconds()))
    if seconds < 120:
        return f"{seconds}s ago"
    if seconds < 7200:
        return f"{seconds // 60}m ago"
    return f"{seconds / 3600:.1f}h ago"


KIND = Kind(
    name="redis",
    config=RedisConfig,
    build=RedisCheck,
    summary="PING latency, memory vs maxmemory, hit ratio, evictions, clients and replication of Redis",
)
