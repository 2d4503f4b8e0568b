"""The ``postgres`` kind's params: where to connect, which checks run, and their thresholds."""

from __future__ import annotations

from datetime import timedelta
from enum import StrEnum
from typing import Literal, Self

from pydantic import ByteSize, Field, model_validator

from maintd.plan.base import StrictModel
from maintd.plan.types import Duration, format_duration

CheckName = Literal["replication", "connections", "transactions", "dead_tuples"]


class Role(StrEnum):
    primary = "primary"
    standby = "standby"
    any = "any"


class PostgresConnection(StrictModel):
    """Where to connect, each defaulting to the target's connection key of the same name: the
    ``postgres`` check's params, shared by the actions on PostgreSQL."""

    host: str | None = Field(
        default=None, description="host name, IP or socket directory; default: the target's connection.host"
    )
    port: int | None = Field(
        default=None, ge=1, le=65535, description="default: the target's connection.port, else 5432"
    )
    database: str | None = Field(
        default=None,
        description="default: the target's connection.database (or dbname), else postgres",
    )
    user: str | None = Field(
        default=None, description="default: the target's connection.user, else libpq's default"
    )
    sslmode: Literal["disable", "allow", "prefer", "require", "verify-ca", "verify-full"] | None = Field(
        default=None, description="default: the target's connection.sslmode, else libpq's prefer"
    )
    password_secret: str = Field(
        default="password",
        description="the target's secret holding the password; no password is sent if the target lacks it",
    )
    connect_timeout: Duration = Field(
        default=timedelta(seconds=10), description="give up connecting after this (at least 2s, libpq's rule)"
    )


class PostgresConfig(PostgresConnection):
    statement_timeout: Duration = Field(
        default=timedelta(seconds=10), description="each of the check's queries is cancelled after this"
    )

    # What.
    expect_role: Role = Field(
        default=Role.any,
        description="primary: critical when in recovery; standby: critical when not (promoted); any",
    )
    checks: list[CheckName] = Field(
        default=["replication", "connections", "transactions", "dead_tuples"],
        description="which checks run besides connect, version and role; [] for the seed's role check only",
    )

    # Replication.
    min_standbys: int = Field(
        default=0, ge=0, description="on a primary, critical when fewer standbys are streaming"
    )
    require_streaming: bool = Field(
        default=True, description="on a standby, critical when its WAL receiver is not streaming"
    )
    lag_warn_bytes: ByteSize | None = Field(
        default=ByteSize(16 * 2**20), description="warning at or above this replay lag in bytes of WAL"
    )
    lag_crit_bytes: ByteSize | None = Field(
        default=ByteSize(256 * 2**20), description="critical at or above this replay lag in bytes of WAL"
    )
    lag_warn_time: Duration | None = Field(
        default=timedelta(seconds=30), description="warning at or above this replay lag in time"
    )
    lag_crit_time: Duration | None = Field(
        default=timedelta(minutes=5), description="critical at or above this replay lag in time"
    )
    inactive_slot_status: Literal["ok", "warning", "critical"] = Field(
        default="warning", description="the status of a primary's replication slot that nothing uses"
    )

    # Connections.
    connections_warn_percent: float | None = Field(
        default=80.0, gt=0, le=100, description="warning at or above this share of max_connections"
    )
    connections_crit_percent: float | None = Field(
        default=90.0, gt=0, le=100, description="critical at or above this share of max_connections"
    )

    # Transactions.
    long_transaction_warn: Duration | None = Field(
        default=timedelta(minutes=10), description="warning for a transaction open at least this long"
    )
    long_transaction_crit: Duration | None = Field(
        default=timedelta(hours=1), description="critical for a transaction open at least this long"
    )
    idle_in_transaction_warn: Duration | None = Field(
        default=timedelta(minutes=5), description="warning for a session idle in a transaction this long"
    )
    idle_in_transaction_crit: Duration | None = Field(
        default=timedelta(minutes=30), description="critical for a session idle in a transaction this long"
    )
    show_query: bool = Field(
        default=True, description="list the first 100 characters of a long transaction's query"
    )
    list_limit: int = Field(default=10, ge=1, le=1000, description="most sessions listed in the output")

    # Dead tuples.
    dead_tuple_warn_ratio: float | None = Field(
        default=0.3, gt=0, le=1, description="warning when a table's dead / (live + dead) tuples reach this"
    )
    dead_tuple_crit_ratio: float | None = Field(
        default=0.5, gt=0, le=1, description="critical when a table's dead / (live + dead) tuples reach this"
    )
    dead_tuple_min_rows: int = Field(
        default=10_000, ge=1, description="tables with fewer live + dead tuples are not judged"
    )
    dead_tuple_top: int = Field(default=5, ge=1, le=1000, description="the worst tables looked at")

    @model_validator(mode="after")
    def _warn_not_above_crit(self) -> Self:
        pairs = [
            ("lag_warn_bytes", "lag_crit_bytes"),
            ("lag_warn_time", "lag_crit_time"),
            ("connections_warn_percent", "connections_crit_percent"),
            ("long_transaction_warn", "long_transaction_crit"),
            ("idle_in_transaction_warn", "idle_in_transaction_crit"),
            ("dead_tuple_warn_ratio", "dead_tuple_crit_ratio"),
        ]
        for warn, crit in pairs:
            low, high = getattr(self, warn), getattr(self, crit)
            if low is not None and high is not None and low > high:
                raise ValueError(f"{warn} ({_show(low)}) is above {crit} ({_show(high)})")
        if len(set(self.checks)) != len(self.checks):
            raise ValueError("checks lists a check twice")
        return self


def _show(value: object) -> str:
    return format_duration(value) if isinstance(value, timedelta) else str(value)
