"""``clean_temp_files`` (disk_full): delete old temporary files by age and pattern, under allowed roots only.

Every path is resolved (symlinks followed) and must lie under one of ``allowed_roots``, or the
execution is refused before anything is deleted. Only regular files are deleted; symbolic
links are never followed or removed, and directories stay. The directories count towards the
blast radius (``max_targets``).
"""

from __future__ import annotations

import asyncio
import fnmatch
import os
import stat
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Self

from pydantic import Field, field_validator, model_validator

from maintd.checks.base import Change, format_bytes
from maintd.plan.base import StrictModel
from maintd.plan.types import Duration
from maintd.remediation.base import ActionContext, ActionKind, ActionResult, Refused, limit_blast

MAX_LISTED = 100  # files named in the change's detail; the rest are counted


class CleanConfig(StrictModel):
    paths: list[str] = Field(min_length=1, description="directories to clean; ${label} is filled in")
    allowed_roots: list[str] = Field(
        min_length=1, description="absolute directories the paths must lie under; anything else is refused"
    )
    patterns: list[str] = Field(default=["*"], min_length=1, description="file name patterns (fnmatch)")
    older_than: Duration = Field(default=timedelta(hours=1), description="only files not modified this long")
    recursive: bool = Field(default=True, description="also clean subdirectories")
    max_files: int = Field(default=100_000, ge=1, description="refuse when more files would be deleted")

    @field_validator("allowed_roots")
    @classmethod
    def _absolute(cls, value: list[str]) -> list[str]:
        for root in value:
            if not os.path.isabs(root) or os.path.normpath(root) == "/":
                raise ValueError(f"allowed root {root!r} must be an absolute directory other than /")
        return value

    @model_validator(mode="after")
    def _not_everything(self) -> Self:
        if any(not p.strip() for p in self.paths):
            raise ValueError("an empty path would mean everything; name the directories")
        return self


@dataclass
class _Found:
    files: list[tuple[Path, int]] = field(default_factory=list)  # (path, size)


class CleanTempFiles:
    def __init__(self, config: CleanConfig) -> None:
        self.config = config

    async def execute(self, ctx: ActionContext) -> ActionResult:
        cfg = self.config
        directories = [confine(p, cfg.allowed_roots) for p in cfg.paths]
        limit_blast(
            "directories", [str(d) for d in directories], ctx.max_targets, selector=" ".join(cfg.paths)
        )
        cutoff = ctx.clock.now() - cfg.older_than
        found = await asyncio.to_thread(_select, directories, cfg, cutoff)
        if len(found.files) > cfg.max_files:
            raise Refused(f"{len(found.files)} files match, more than max_files {cfg.max_files}")
        if ctx.dry_run:
            return ActionResult(True, f"dry run: would delete {_sum(found)}", _changes(found, directories))
        errors = await asyncio.to_thread(_delete, found)
        done = _Found([f for f in found.files if str(f[0]) not in errors])
        output = f"deleted {_sum(done)} under {', '.join(map(str, directories))}"
        if errors:
            first = next(iter(errors.items()))
            return ActionResult(
                False,
                f"{output}; {len(errors)} not deleted ({first[0]}: {first[1]})",
                _changes(done, directories),
            )
        return ActionResult(True, output, _changes(done, directories))


def confine(path: str, roots: list[str]) -> Path:
    """The resolved directory, if it lies under an allowed root; Refused otherwise."""
    resolved = Path(os.path.realpath(path))
    for root in roots:
        base = Path(os.path.realpath(root))
        if resolved == base or base in resolved.parents:
            if not resolved.is_dir():
                raise Refused(f"{path}: not a directory")
            return resolved
    raise Refused(f"{path} (resolved: {resolved}) is outside the allowed roots {', '.join(roots)}")


def _select(directories: list[Path], cfg: CleanConfig, cutoff: datetime) -> _Found:
    found = _Found()
    limit = cutoff.timestamp()
    for directory in directories:
        for current, dirs, names in os.walk(directory, followlinks=False):
            if not cfg.recursive:
                dirs.clear()
            for name in names:
                if not any(fnmatch.fnmatch(name, p) for p in cfg.patterns):
                    continue
                path = Path(current) / name
                try:
                    info = path.lstat()
                except OSError:
                    continue  # gone meanwhile
                if stat.S_ISREG(info.st_mode) and info.st_mtime < limit:
                    found.files.append((path, info.st_size))
    return found


def _delete(found: _Found) -> dict[str, str]:
    errors: dict[str, str] = {}
    for path, _size in found.files:
        try:
            path.unlink()
        except FileNotFoundError:
            pass  # someone else cleaned it: the outcome is the same
        except OSError as exc:
            errors[str(path)] = exc.strerror or str(exc)
    return errors


def _sum(found: _Found) -> str:
    return f"{len(found.files)} files ({format_bytes(sum(s for _p, s in found.files))})"


def _changes(found: _Found, directories: list[Path]) -> list[Change]:
    out = []
    for directory in directories:
        mine = [(p, s) for p, s in found.files if directory == p.parent or directory in p.parents]
        detail = {
            "files": len(mine),
            "bytes": sum(s for _p, s in mine),
            "deleted": [str(p) for p, _s in mine[:MAX_LISTED]],
        }
        out.append(Change("delete", str(directory), detail))
    return out


ACTION = ActionKind(
    name="clean_temp_files",
    config=CleanConfig,
    build=CleanTempFiles,
    summary="disk_full: delete old temporary files by age and pattern, under allowed roots only",
    destructive=lambda _cfg: False,  # confined to allowed roots and old files: safe to run unattended
)
