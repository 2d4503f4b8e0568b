"""``dr-drill``: the monthly disaster-recovery drill of a PostgreSQL database.

Back the source up, bring the copy back (``basebackup``: a throwaway instance made with
pg_basebackup, optionally a streaming standby promoted by the configured failover command;
``dump``: pg_dump restored into a scratch database), verify it table by table, measure RTO
and RPO, write a Markdown and HTML report with the earlier drills, and tear down whatever the
drill started. psycopg is imported only when a run starts (``drill`` holds the code).
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Literal, Self

from pydantic import Field, field_validator, model_validator

from maintd.checks.base import Kind, lazy
from maintd.plan.base import StrictModel
from maintd.plan.types import Duration

__all__ = ["KIND", "PLACEHOLDERS", "DrDrillConfig", "Limits"]

PLACEHOLDERS = ("data_dir", "drill_dir", "port", "bin_dir", "pg_ctl")
"""What a failover command's arguments may name, each as ``{name}``."""

_IDENT = r"[a-z_][a-z0-9_]{0,62}"


class Limits(StrictModel):
    warning: Duration | None = Field(default=None, description="warning above this")
    critical: Duration | None = Field(default=None, description="critical above this")


class DrDrillConfig(StrictModel):
    method: Literal["basebackup", "dump"] = Field(
        default="basebackup",
        description="basebackup: pg_basebackup to a throwaway instance; dump: pg_dump to a scratch database",
    )
    host: str | None = Field(default=None, description="the source server; default: connection.host")
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
    bin_dir: str | None = Field(
        default=None,
        description="directory of pg_basebackup, pg_ctl, pg_dump, pg_restore; default: found on PATH",
    )
    run_as: str = Field(
        default="postgres", description="OS user the drill instance runs as (when maintd runs as root)"
    )
    drill_dir: str | None = Field(
        default=None,
        description="the drill's own directory (made and removed by the drill); default: "
        "/var/tmp/maintd-dr-<task>-<target>",
    )
    drill_port: int | None = Field(
        default=None,
        ge=1,
        le=65535,
        description="the drill instance's port (socket name); default: a free one",
    )
    standby: bool = Field(
        default=False, description="start the copy as a streaming standby, then run failover_command"
    )
    failover_command: list[str] | None = Field(
        default=None,
        min_length=1,
        description="argument list promoting the standby; {data_dir} {drill_dir} {port} {bin_dir} {pg_ctl}",
    )
    failover_timeout: Duration = Field(
        default=timedelta(seconds=60), description="how long the copy may take to leave recovery"
    )
    settings: dict[str, str] = Field(
        default={}, description="extra postgresql.conf settings for the drill instance"
    )
    scratch_database: str | None = Field(
        default=None, description="method dump: the scratch database; default: maintd_dr_<target>"
    )
    tables: list[str] | None = Field(
        default=None, description="schema.table names to compare; default: every user table"
    )
    marker_table: str | None = Field(
        default="maintd_dr_marker", description="table in the source's public schema for the RPO marker row"
    )
    rpo_query: str | None = Field(
        default=None, description="SQL run on the copy returning the newest data's timestamptz"
    )
    max_rto: Limits = Field(default=Limits(), description="RTO thresholds: warning and critical")
    max_rpo: Limits = Field(default=Limits(), description="RPO thresholds: warning and critical")
    report_dir: str | None = Field(
        default=None, description="where the Markdown and HTML reports go; default: no report files"
    )
    history_runs: int = Field(default=12, ge=0, le=1000, description="earlier drills listed in the report")
    list_limit: int = Field(default=10, ge=1, le=1000, description="most differing tables listed")

    @field_validator("scratch_database", "marker_table")
    @classmethod
    def _plain_name(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(_IDENT, value):
            raise ValueError("lower-case letters, digits and _ (at most 63)")
        return value

    @field_validator("settings")
    @classmethod
    def _setting_names(cls, value: dict[str, str]) -> dict[str, str]:
        for name, setting in value.items():
            if not re.fullmatch(r"[a-z_][a-z0-9_.]*", name) or "\n" in setting:
                raise ValueError(f"settings: {name!r} is not a setting name or its value spans lines")
        return value

    @field_validator("failover_command")
    @classmethod
    def _known_placeholders(cls, value: list[str] | None) -> list[str] | None:
        for arg in value or []:
            for name in re.findall(r"\{([^{}]*)\}", arg):
                if name not in PLACEHOLDERS:
                    raise ValueError(
                        f"failover_command: unknown placeholder {{{name}}}; known: {PLACEHOLDERS}"
                    )
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.standby != bool(self.failover_command):
            raise ValueError(
                "standby: true and failover_command go together (the command promotes the standby)"
            )
        if self.method == "dump" and self.standby:
            raise ValueError("standby needs method: basebackup")
        return self


KIND = Kind(
    name="dr-drill",
    config=DrDrillConfig,
    build=lazy("maintd.tasks.dr_drill.drill"),
    summary="disaster-recovery drill: backup, restore, failover, verify, RTO/RPO, report with history",
    changes=lambda _config: True,
)
