"""The ``redis`` kind's params: credentials, TLS, and the thresholds of each judgement."""

from __future__ import annotations

from datetime import timedelta
from typing import Literal

from pydantic import Field

from maintd.plan.base import StrictModel
from maintd.plan.types import Duration


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
