"""The ``logs`` action's params: logrotate's words where they mean the same thing."""

from __future__ import annotations

import signal as signals
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Self

from pydantic import Field, field_validator, model_validator

from maintd.plan.base import StrictModel
from maintd.plan.types import Duration


class Method(StrEnum):
    rename = "rename"
    copytruncate = "copytruncate"


class Codec(StrEnum):
    zstd = "zstd"
    gzip = "gzip"

    @property
    def suffix(self) -> str:
        return ".zst" if self is Codec.zstd else ".gz"


DEFAULT_LEVEL = {Codec.zstd: 3, Codec.gzip: 6}
LEVELS = {Codec.zstd: (1, 19), Codec.gzip: (1, 9)}


class LogsConfig(StrictModel):
    path: str | None = Field(default=None, description="the log directory; default: target connection.path")
    include: list[str] = Field(
        default=["*.log"], min_length=1, description="live logs: file-name glob patterns in the directory"
    )
    method: Method = Field(default=Method.rename, description="rename (+ signal) or copytruncate")
    pid_file: str | None = Field(default=None, description="rename: the writer whose pid gets `signal`")
    signal: str = Field(default="HUP", description="rename: the signal that makes the writer reopen its log")
    create: bool = Field(default=True, description="rename: create a new empty live log, same mode and owner")
    dateformat: str = Field(default="-%Y%m%d", description="suffix of a rotated log (logrotate dateext)")
    notifempty: bool = Field(default=True, description="do not rotate an empty log")
    missingok: bool = Field(default=False, description="a missing directory or named log is not an error")
    compress_after: Duration = Field(
        default=timedelta(days=30), description="compress rotated logs last written this long ago"
    )
    compression: Codec = Field(default=Codec.zstd, description="zstd or gzip")
    level: int | None = Field(default=None, description="compression level; default zstd 3, gzip 6")
    threads: int = Field(default=0, ge=0, le=256, description="compression threads; 0 = one per CPU")
    archive_dir: str | None = Field(
        default=None, description="where compressed logs go (logrotate olddir); default: the directory"
    )
    rotate: int | None = Field(
        default=None, ge=0, description="keep this many rotated generations per log (logrotate rotate)"
    )
    maxage: Duration | None = Field(
        default=timedelta(days=90), description="delete rotated logs older than this (logrotate maxage)"
    )
    legal_hold: list[str] = Field(
        default=[], description="never delete these: globs on the full path (absolute) or the file name"
    )
    min_retention: Duration = Field(
        default=timedelta(0), description="never delete a rotated log younger than this"
    )

    @field_validator("signal")
    @classmethod
    def _known_signal(cls, value: str) -> str:
        name = value.upper().removeprefix("SIG")
        if f"SIG{name}" not in signals.Signals.__members__:
            raise ValueError(f"{value!r} is not a signal name (HUP, USR1, ...)")
        return name

    @field_validator("include")
    @classmethod
    def _names_not_paths(cls, value: list[str]) -> list[str]:
        bad = [p for p in value if "/" in p]
        if bad:
            raise ValueError(f"include takes file-name patterns in the directory, not paths: {bad}")
        return value

    @field_validator("dateformat")
    @classmethod
    def _usable_dateformat(cls, value: str) -> str:
        allowed = {"%Y", "%m", "%d", "%H", "%M", "%S", "%s"}
        used = {value[i : i + 2] for i, ch in enumerate(value) if ch == "%"}
        if not used or not used <= allowed:
            raise ValueError(f"dateformat uses {sorted(allowed)} (logrotate's), at least one; got {value!r}")
        if "/" in value or not datetime(2026, 1, 2).strftime(value):
            raise ValueError("dateformat must make a file-name suffix")
        return value

    @model_validator(mode="after")
    def _level_in_range(self) -> Self:
        low, high = LEVELS[self.compression]
        if self.level is not None and not low <= self.level <= high:
            raise ValueError(f"{self.compression} level is {low} to {high}, not {self.level}")
        return self

    @property
    def signal_number(self) -> signals.Signals:
        return signals.Signals[f"SIG{self.signal}"]

    @property
    def compress_level(self) -> int:
        return self.level if self.level is not None else DEFAULT_LEVEL[self.compression]
