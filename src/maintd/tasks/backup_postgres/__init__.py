"""``backup-postgres``: verify a pg_dump (custom or directory format) by restoring it.

Checks the dump's age against a maximum and its size against the recent runs' trend,
restores it into a scratch database, compares each table's row count and content checksum
with the source database (or the manifest ``maintd backup pg-manifest`` wrote at dump time),
and drops the scratch database. On failure the configured immediate backup runs and its dump
is verified in turn. psycopg is imported only when a run starts (``verify`` holds what uses it).
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Literal, Self

from pydantic import Field, field_validator, model_validator

from maintd.checks.base import Kind, lazy
from maintd.plan.base import StrictModel
from maintd.plan.types import Duration

__all__ = ["KIND", "BackupPostgresConfig"]


class BackupPostgresConfig(StrictModel):
    dump: str | None = Field(
        default=None,
        description="the pg_dump archive: a -Fc file or a -Fd directory; default: connection.dump",
    )
    host: str | None = Field(default=None, description="the server; default: the target's connection.host")
    port: int | None = Field(
        default=None, ge=1, le=65535, description="default: the target's connection.port, else 5432"
    )
    database: str | None = Field(
        default=None, description="the source database; default: the target's connection.database"
    )
    user: str | None = Field(default=None, description="default: the target's connection.user")
    password_secret: str = Field(
        default="password", description="the target's secret holding the password, when it has one"
    )
    max_age: Duration | None = Field(
        default=timedelta(hours=26), description="critical when the dump is older than this"
    )
    size_trend_runs: int = Field(
        default=7, ge=2, le=1000, description="the earlier runs whose dump sizes make the trend"
    )
    size_warn_ratio: float | None = Field(
        default=0.5, gt=0, lt=1, description="warning when the dump is under this share of the trend"
    )
    restore: bool = Field(default=True, description="restore into the scratch database and compare")
    scratch_database: str | None = Field(
        default=None,
        description="the scratch database (dropped before and after); default: maintd_verify_<target>",
    )
    compare: Literal["source", "manifest", "none"] = Field(
        default="source",
        description="compare the restored tables with the live source, the dump-time manifest, or nothing",
    )
    manifest: str | None = Field(default=None, description="the table manifest, for compare: manifest")
    jobs: int = Field(default=1, ge=1, le=64, description="pg_restore --jobs (directory-format dumps)")
    backup_command: list[str] | None = Field(
        default=None,
        min_length=1,
        description="on a critical result: run this immediate backup (argument list) and verify again",
    )
    list_limit: int = Field(default=10, ge=1, le=1000, description="most differing tables listed")

    @field_validator("scratch_database")
    @classmethod
    def _plain_name(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", value):
            raise ValueError("scratch_database: lower-case letters, digits and _ (at most 63)")
        return value

    @model_validator(mode="after")
    def _manifest_given(self) -> Self:
        if self.compare == "manifest" and not self.manifest:
            raise ValueError("compare: manifest needs params.manifest")
        return self


KIND = Kind(
    name="backup-postgres",
    config=BackupPostgresConfig,
    build=lazy("maintd.tasks.backup_postgres.verify"),
    summary="pg_dump age, size trend, restore into a scratch database, row counts and checksums",
    changes=lambda config: config.restore or bool(config.backup_command),
)
