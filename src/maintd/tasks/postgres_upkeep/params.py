"""Where a PostgreSQL action connects: the ``postgres`` check's connection params, shared by the
actions on PostgreSQL (``postgres-upkeep``, ``rotate-postgres-password``). No psycopg here."""

from __future__ import annotations

from datetime import timedelta
from typing import Literal

from pydantic import Field

from maintd.checks.postgres.config import PostgresConfig
from maintd.plan.base import StrictModel
from maintd.plan.types import Duration


class PostgresConnection(StrictModel):
    host: str | None = Field(
        default=None, description="host name, IP or socket directory; default: the target's connection.host"
    )
    port: int | None = Field(
        default=None, ge=1, le=65535, description="default: the target's connection.port, else 5432"
    )
    database: str | None = Field(
        default=None, description="default: the target's connection.database (or dbname), else postgres"
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

    def as_check_config(self) -> PostgresConfig:
        """The same connection as the ``postgres`` check's params, to reuse its helpers."""
        return PostgresConfig(
            host=self.host,
            port=self.port,
            database=self.database,
            user=self.user,
            sslmode=self.sslmode,
            password_secret=self.password_secret,
            connect_timeout=self.connect_timeout,
        )
