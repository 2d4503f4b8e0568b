"""``backup-files``: verify a file backup (files, configurations, volume copies, audit-log archives)
against the manifest written at backup time, or a restic / borg repository with its own ``check``.

On failure the configured immediate backup runs and is verified in turn (``immediate``).
"""

from __future__ import annotations

from typing import Literal, Self

from pydantic import Field, model_validator

from maintd.checks.base import Kind, lazy
from maintd.plan.base import StrictModel
from maintd.plan.types import Duration

__all__ = ["KIND", "BackupFilesConfig"]


class BackupFilesConfig(StrictModel):
    tool: Literal["manifest", "restic", "borg"] = Field(
        default="manifest",
        description="manifest: hash the files against a manifest; restic / borg: the tool's own check",
    )
    manifest: str | None = Field(
        default=None,
        description="the manifest file (tool manifest); default: the target's connection.manifest",
    )
    root: str | None = Field(
        default=None, description="where the files are now; default: the root recorded in the manifest"
    )
    extra_files: Literal["ignore", "warning", "critical"] = Field(
        default="warning", description="the status of a file under the root that the manifest lacks"
    )
    max_age: Duration | None = Field(
        default=None, description="critical when the manifest (the backup) was written longer ago"
    )
    threads: int = Field(default=0, ge=0, le=256, description="files hashed at once; 0: one per CPU")
    repository: str | None = Field(
        default=None, description="restic / borg repository; default: the target's connection.repository"
    )
    password_secret: str = Field(
        default="password",
        description="the target's secret passed as RESTIC_PASSWORD / BORG_PASSPHRASE, when it has one",
    )
    read_data_runs: int = Field(
        default=0,
        ge=0,
        le=10_000,
        description="restic: read 1/N of the data each run, rotating, so N runs read it all; 0: none",
    )
    backup_command: list[str] | None = Field(
        default=None,
        min_length=1,
        description="on a critical result: run this immediate backup (argument list) and verify again",
    )
    list_limit: int = Field(default=10, ge=1, le=1000, description="most problem files listed")

    @model_validator(mode="after")
    def _read_data_is_restic(self) -> Self:
        if self.read_data_runs and self.tool != "restic":
            raise ValueError("read_data_runs is for tool restic")
        return self


KIND = Kind(
    name="backup-files",
    config=BackupFilesConfig,
    build=lazy("maintd.tasks.backup_files.verify"),
    summary="file backups against their manifest (blake3 / sha256), or restic / borg check",
    changes=lambda config: bool(config.backup_command),
)
