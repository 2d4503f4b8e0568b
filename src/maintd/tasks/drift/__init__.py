"""``drift``: the desired state in a directory (ideally a git checkout) against what is there.

Files (content from a file of the desired state, or a sha256; mode; owner;
group), directories (the expected set of entries) and Kubernetes manifests
(each YAML document against the live object, comparing only the fields the
manifest sets). Every drifted item gets a unified diff in the output (bounded;
a sensitive item shows hashes only); the run is a warning, or critical, on
drift, so the existing run -> alert path raises it. Read-only: putting things
back is a change request. kubernetes_asyncio is imported only when a run has
manifests (``audit`` holds what uses it).
"""

from __future__ import annotations

import re
from typing import Literal, Self

from pydantic import Field, field_validator, model_validator

from maintd.checks.base import Kind, lazy
from maintd.checks.kubernetes.access import ClusterAccess
from maintd.plan.base import StrictModel

__all__ = ["KIND", "DirectorySpec", "DriftConfig", "FileSpec", "KubernetesSource"]

_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_MODE = re.compile(r"^0?[0-7]{3,4}$")


class FileSpec(StrictModel):
    path: str = Field(description="the actual file; a relative path is under params.root")
    content: str | None = Field(
        default=None, description="the expected content: a file of the desired state (relative to desired)"
    )
    sha256: str | None = Field(default=None, description="the expected content's SHA-256 (hex)")
    mode: str | None = Field(default=None, description="expected permission bits, octal, e.g. '0640'")
    owner: str | None = Field(default=None, description="expected owner: a user name or a uid")
    group: str | None = Field(default=None, description="expected group: a group name or a gid")
    sensitive: bool = Field(default=False, description="show only hashes in the diff, never the content")

    @field_validator("sha256")
    @classmethod
    def _hex(cls, value: str | None) -> str | None:
        if value is not None and not _SHA256.fullmatch(value.lower()):
            raise ValueError("sha256: 64 hex digits")
        return value.lower() if value else value

    @field_validator("mode")
    @classmethod
    def _octal(cls, value: str | None) -> str | None:
        if value is not None and not _MODE.fullmatch(value):
            raise ValueError("mode: octal permission bits such as '0644'")
        return value

    @model_validator(mode="after")
    def _something_expected(self) -> Self:
        if self.content and self.sha256:
            raise ValueError(f"{self.path}: content or sha256, not both")
        if not any((self.content, self.sha256, self.mode, self.owner, self.group)):
            raise ValueError(f"{self.path}: expect at least one of content, sha256, mode, owner, group")
        return self


class DirectorySpec(StrictModel):
    path: str = Field(description="the actual directory; a relative path is under params.root")
    entries: list[str] | None = Field(default=None, description="the names expected in it, exactly")
    like: str | None = Field(
        default=None,
        description="a directory of the desired state (relative to desired) whose names are expected",
    )
    ignore: list[str] = Field(default=[], description="glob patterns of names not compared, e.g. '*.swp'")

    @model_validator(mode="after")
    def _one_source(self) -> Self:
        if (self.entries is None) == (self.like is None):
            raise ValueError(f"{self.path}: give entries or like (one of them)")
        return self


class KubernetesSource(ClusterAccess):
    """How to reach the cluster, as the ``kubernetes`` check does."""

    namespace: str = Field(default="default", description="for manifests that name no namespace")


class DriftConfig(StrictModel):
    desired: str = Field(description="the directory holding the desired state (ideally a git checkout)")
    record_commit: bool = Field(
        default=True, description="name the checkout's commit (git rev-parse HEAD) and uncommitted changes"
    )
    root: str = Field(default="/", description="where relative actual paths of files and directories are")
    files: list[FileSpec] = Field(default=[], description="files expected: content or sha256, mode, owner")
    directories: list[DirectorySpec] = Field(default=[], description="directories and the names in them")
    manifests: list[str] = Field(
        default=[],
        description="Kubernetes manifests (relative to desired): YAML files, or directories of *.yaml/*.yml",
    )
    kubernetes: KubernetesSource = Field(
        default_factory=KubernetesSource, description="how to reach the cluster the manifests describe"
    )
    sensitive_kinds: list[str] = Field(
        default=["Secret"], description="manifest kinds whose diff shows only hashes"
    )
    on_drift: Literal["warning", "critical"] = Field(default="warning", description="the status of a drift")
    max_diff_lines: int = Field(default=60, ge=1, le=10_000, description="most diff lines shown per item")
    max_output_bytes: int = Field(
        default=12_000, ge=1_000, le=1_000_000, description="the output is cut at about this many bytes"
    )

    @model_validator(mode="after")
    def _something_to_compare(self) -> Self:
        if not (self.files or self.directories or self.manifests):
            raise ValueError("nothing to compare: give files, directories or manifests")
        return self


KIND = Kind(
    name="drift",
    config=DriftConfig,
    build=lazy("maintd.tasks.drift.audit"),
    summary="configuration drift: files, directories and Kubernetes manifests against a desired state "
    "(git checkout); unified diffs",
)
