"""Run the survey's steps in order (rotate, compress, delete) and report counts, bytes and changes.

The first step that fails stops the run: nothing after it is done, so a failed compression
never leads on to deletions. Every step done before it is reported and audited.
"""

from __future__ import annotations

import asyncio
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from maintd.checks.base import Change, CheckResult, RunContext, Status, format_bytes
from maintd.tasks.logs import archive, rotate
from maintd.tasks.logs.config import LogsConfig, Method
from maintd.tasks.logs.survey import Step, Survey, codec_of, survey


@dataclass
class Tally:
    rotated: int = 0
    compressed: int = 0
    bytes_before: int = 0
    bytes_after: int = 0
    deleted: int = 0
    bytes_deleted: int = 0
    seconds: float = 0.0
    changes: list[Change] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)


class LogsAction:
    def __init__(self, config: LogsConfig) -> None:
        self.config = config

    async def run(self, ctx: RunContext) -> CheckResult:
        cfg = self.config
        where = cfg.path or ctx.target.connection.get("path")
        if not where:
            return CheckResult(
                Status.unknown, f"no directory: set params.path or target {ctx.target.name}'s connection.path"
            )
        directory = Path(where)
        archive_dir = Path(cfg.archive_dir) if cfg.archive_dir else directory
        if not archive_dir.is_absolute():
            archive_dir = directory / archive_dir
        try:
            found = await asyncio.to_thread(survey, cfg, directory, archive_dir, ctx.clock.now())
        except OSError as exc:  # unreadable directory, a file gone between listing and stat
            return CheckResult(Status.critical, f"{directory}: nothing done, {exc.filename}: {exc.strerror}")
        if found.problems:
            return CheckResult(Status.critical, _refused(found), _metrics(found, Tally()))
        if ctx.dry_run:
            return _planned(found)
        tally = Tally()
        failure = await asyncio.to_thread(self._execute, found, tally)
        return _report(found, tally, failure)

    def _execute(self, found: Survey, tally: Tally) -> str:
        """Do every step; the failure that stopped them, or ''."""
        cfg = self.config
        started = time.perf_counter()
        try:
            if any(s.action == "compress" for s in found.steps) and not found.archive_dir.exists():
                found.archive_dir.mkdir(mode=0o750)
                tally.changes.append(Change("mkdir", str(found.archive_dir)))
            for step in found.steps:
                _STEPS[step.action](cfg, found, step, tally)
        except (archive.ArchiveError, OSError) as exc:
            return str(exc) if isinstance(exc, archive.ArchiveError) else f"{exc.filename}: {exc.strerror}"
        finally:
            tally.seconds = time.perf_counter() - started
        return ""


def _rotate(cfg: LogsConfig, found: Survey, step: Step, tally: Tally) -> None:
    assert step.dest is not None
    if cfg.method is Method.copytruncate:
        how = rotate.copytruncate(step.path, step.dest)
    else:
        how = rotate.rename(step.path, step.dest, create=cfg.create, pid=found.pid, signal=cfg.signal_number)
    tally.rotated += 1
    tally.lines.append(f"rotated {step.path}: {how}")
    detail = {"to": str(step.dest), "bytes": step.size, "method": cfg.method.value}
    tally.changes.append(Change("rotate", str(step.path), detail))


def _compress(cfg: LogsConfig, found: Survey, step: Step, tally: Tally) -> None:
    assert step.dest is not None
    if step.dest.exists():
        done = archive.adopt(step.path, step.dest, codec_of(step.dest))
    else:
        done = archive.compress(
            step.path, step.dest, codec=cfg.compression, level=cfg.compress_level, threads=cfg.threads
        )
    tally.compressed += 1
    tally.bytes_before += done.bytes_before
    tally.bytes_after += done.bytes_after
    tally.lines.append(
        f"compressed {step.path} -> {step.dest.name}: "
        f"{format_bytes(done.bytes_before)} -> {format_bytes(done.bytes_after)}"
        f" ({done.how}), original removed"
    )
    detail = {
        "to": str(step.dest),
        "bytes_before": done.bytes_before,
        "bytes_after": done.bytes_after,
        "verified": done.how,
    }
    tally.changes.append(Change("compress", str(step.path), detail))


def _delete(cfg: LogsConfig, found: Survey, step: Step, tally: Tally) -> None:
    step.path.unlink()
    tally.deleted += 1
    tally.bytes_deleted += step.size
    tally.lines.append(
        f"deleted {step.path} ({format_bytes(step.size)}, {step.age_days:g} days old, {step.reason})"
    )
    detail = {"bytes": step.size, "age_days": step.age_days, "reason": step.reason}
    tally.changes.append(Change("delete", str(step.path), detail))


_STEPS = {"rotate": _rotate, "compress": _compress, "delete": _delete}


def _refused(found: Survey) -> str:
    head = f"{found.directory}: nothing done, " + (
        found.problems[0] if len(found.problems) == 1 else f"{len(found.problems)} problems"
    )
    return "\n".join([head, *(found.problems if len(found.problems) > 1 else [])])


def _planned(found: Survey) -> CheckResult:
    changes, lines = [], []
    if any(s.action == "compress" for s in found.steps) and not found.archive_dir.exists():
        changes.append(Change("mkdir", str(found.archive_dir)))  # as _execute would
        lines.append(f"would mkdir {found.archive_dir}")
    for step in found.steps:
        detail: dict[str, object] = {"bytes": step.size, "reason": step.reason}
        if step.dest:
            detail["to"] = str(step.dest)
        changes.append(Change(step.action, str(step.path), detail))
        to = f" -> {step.dest.name}" if step.dest else ""
        lines.append(f"would {step.action} {step.path}{to} ({format_bytes(step.size)}, {step.reason})")
    counts = {a: sum(1 for s in found.steps if s.action == a) for a in ("rotate", "compress", "delete")}
    head = (
        f"dry run, nothing changed: would rotate {counts['rotate']}, compress {counts['compress']}, "
        f"delete {counts['delete']}; {len(found.held)} held"
    )
    body = lines + [f"held {s.path}: {s.reason}" for s in found.held] + found.notes
    metrics = {f"planned_{a}": float(n) for a, n in counts.items()} | {"files_held": float(len(found.held))}
    return CheckResult(Status.ok, "\n".join([head, *body]), metrics, changes)


def _report(found: Survey, tally: Tally, failure: str) -> CheckResult:
    ratio = f", ratio {tally.bytes_before / tally.bytes_after:.2f}" if tally.bytes_after else ""
    head = (
        f"rotated {tally.rotated}, compressed {tally.compressed} ({format_bytes(tally.bytes_before)} -> "
        f"{format_bytes(tally.bytes_after)}{ratio}), "
        f"deleted {tally.deleted} ({format_bytes(tally.bytes_deleted)}), "
        f"held {len(found.held)}"
    )
    if failure:
        head = f"stopped: {failure}; nothing after it was done\n{head}"
    body = tally.lines + [f"held {s.path}: {s.reason}" for s in found.held] + found.notes
    status = Status.critical if failure else Status.ok
    return CheckResult(status, "\n".join([head, *body]), _metrics(found, tally), tally.changes)


def _metrics(found: Survey, tally: Tally) -> dict[str, float]:
    # What is kept once the steps ran: the survivors plus what this run rotated and compressed.
    paths = [g.path for g in found.archives] + [s.dest for s in found.steps if s.dest]
    kept = [os.stat(p) for p in paths if p.exists()]
    ages = [st.st_mtime for st in kept]
    return {
        "files_rotated": float(tally.rotated),
        "files_compressed": float(tally.compressed),
        "bytes_before": float(tally.bytes_before),
        "bytes_after": float(tally.bytes_after),
        "files_deleted": float(tally.deleted),
        "bytes_deleted": float(tally.bytes_deleted),
        "files_held": float(len(found.held)),
        "rotated_files_kept": float(len(kept)),
        "rotated_bytes_kept": float(sum(st.st_size for st in kept)),
        "oldest_kept_mtime": min(ages) if ages else 0.0,
        "seconds": round(tally.seconds, 3),
    }
