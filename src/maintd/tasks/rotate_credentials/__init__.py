"""``rotate-postgres-password``: rotate a PostgreSQL login without a moment where consumers
cannot connect.

PostgreSQL keeps one password per role, so the old and the new credential cannot both belong
to one role. Two login roles alternate (``app_blue`` / ``app_green``, both members of a group
role that holds the privileges): the one the consumers' secret file does not name gets a new
password, the file is rewritten to name it, the reload hook tells the consumers, the new
credential is verified (and, optionally, the old role's sessions are waited out), and only
then is the old role retired. A failure before the end leaves the old role logging in.
psycopg is imported only when a run starts (``postgres`` holds what uses it).
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Literal, Self

from pydantic import Field, field_validator, model_validator

from maintd.checks.base import Kind, lazy
from maintd.checks.postgres.config import PostgresConnection
from maintd.plan.types import Duration

__all__ = ["KIND", "RotatePostgresPasswordConfig"]


class RotatePostgresPasswordConfig(PostgresConnection):
    roles: list[str] = Field(
        min_length=2,
        max_length=2,
        description="the two login roles that alternate: [app_blue, app_green]",
    )
    group_role: str | None = Field(
        default=None, description="the role holding the privileges; both roles must be members of it"
    )
    secret_file: str = Field(description="the consumers' secret file: it names the active role")
    secret_format: Literal["env", "json"] = Field(
        default="env", description="env: PGUSER= and PGPASSWORD= lines; json: user and password keys"
    )
    reload_command: list[str] | None = Field(
        default=None, min_length=1, description="run after the file is written (argument list, never a shell)"
    )
    reload_timeout: Duration = Field(
        default=timedelta(seconds=60), description="the reload hook's time limit"
    )
    verify_host: str | None = Field(
        default=None, description="where consumers connect (a pooler, say); default: host"
    )
    verify_port: int | None = Field(default=None, ge=1, le=65535, description="default: port")
    verify_database: str | None = Field(
        default=None, description="the consumers' database; default: database"
    )
    verify_command: list[str] | None = Field(
        default=None,
        min_length=1,
        description="after the reload: exit 0 when consumers work (argument list)",
    )
    drain_timeout: Duration | None = Field(
        default=None,
        description="wait up to this long for the old role's sessions to end; null: no wait",
    )
    retire: Literal["nologin", "password_null", "valid_until"] = Field(
        default="nologin",
        description="nologin: NOLOGIN, PASSWORD NULL; password_null; valid_until: now + retire_grace",
    )
    retire_grace: Duration = Field(
        default=timedelta(0), description="for retire: valid_until, how long the old password stays valid"
    )
    min_interval: Duration | None = Field(
        default=timedelta(hours=1),
        description="a run within this of the last rotation does nothing (retries, catch-up runs)",
    )

    @field_validator("roles")
    @classmethod
    def _plain_names(cls, value: list[str]) -> list[str]:
        for name in value:
            if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_$-]{0,62}", name):
                raise ValueError(f"roles: {name!r} is not a role name")
        if value[0] == value[1]:
            raise ValueError("roles: two different roles are needed")
        return value

    @model_validator(mode="after")
    def _group_is_not_a_login(self) -> Self:
        if self.group_role is not None and self.group_role in self.roles:
            raise ValueError("group_role must not be one of roles")
        return self


KIND = Kind(
    name="rotate-postgres-password",
    config=RotatePostgresPasswordConfig,
    build=lazy("maintd.tasks.rotate_credentials.postgres"),
    summary="non-disruptive PostgreSQL password rotation over two alternating login roles",
    changes=lambda _config: True,
)
