"""``unused-resources``: lists what nothing uses any more (claims no pod mounts, Released volumes,
old temp files and backups beyond retention) and drafts ONE change request removing exactly that.

It never removes anything by itself: the list is written to a file whose SHA-256 the change
carries, and the plan's procedure runs ``python -m maintd.tasks.unused_resources.remove`` on it
after approval. A dry run lists only.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Self

from pydantic import Field, field_validator, model_validator

from maintd.checks.base import Kind, lazy
from maintd.checks.kubernetes.access import ClusterAccess
from maintd.plan.base import StrictModel
from maintd.plan.types import Duration
from maintd.tasks.change_drafts import ChangeDraftSettings

__all__ = ["KIND", "FileRule", "UnusedResourcesConfig"]


class FileRule(StrictModel):
    """Files under one allowed root: old temp files, or backups beyond their retention."""

    root: str = Field(description="the allowed root (absolute); nothing outside it is ever listed")
    pattern: str = Field(default="*", description="glob on the file name, e.g. '*.tmp' or 'app-*.dump'")
    older_than: Duration = Field(default=timedelta(days=7), description="listed when modified longer ago")
    keep_newest: int = Field(
        default=0, ge=0, description="of the matches in each directory, the newest N are always kept"
    )
    recursive: bool = Field(default=False, description="look in subdirectories too")

    @field_validator("root")
    @classmethod
    def _absolute(cls, value: str) -> str:
        if not value.startswith("/") or value.rstrip("/") == "":
            raise ValueError(f"root must be an absolute path other than /: {value!r}")
        return value


class UnusedResourcesConfig(StrictModel):
    kubernetes: ClusterAccess | None = Field(
        default=None, description="how to reach the cluster (as the kubernetes check); null: no cluster part"
    )
    namespaces: list[str] = Field(default=[], description="namespaces whose claims are looked at; empty: all")
    stale_after: Duration = Field(
        default=timedelta(days=7),
        description="a claim no pod has mounted for this long (seen by this task's runs) is listed",
    )
    released_after: Duration = Field(
        default=timedelta(days=7), description="a Released volume is listed this long after it was released"
    )
    images: bool = Field(
        default=True, description="list images a node holds that no pod on that node runs (listed only)"
    )
    files: list[FileRule] = Field(default=[], description="file rules: roots, patterns, ages, retention")
    lists_dir: str = Field(description="where the removal lists are written (one file per list, by digest)")
    change: ChangeDraftSettings | None = Field(
        default=None, description="the change request to draft; null: list only (no list file, no draft)"
    )
    timeout: Duration = Field(
        default=timedelta(seconds=20), description="each API call is given up after this"
    )

    @model_validator(mode="after")
    def _something(self) -> Self:
        if self.kubernetes is None and not self.files:
            raise ValueError("give kubernetes, files or both: there is nothing to look at")
        return self


KIND = Kind(
    name="unused-resources",
    config=UnusedResourcesConfig,
    build=lazy("maintd.tasks.unused_resources.run"),
    summary="unused resources: stale claims, Released volumes, old temp files and backups; cleanup by change",
    changes=lambda config: config.change is not None,
)
