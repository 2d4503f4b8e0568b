"""Verify files against their manifest: every file present, the same size and digest; extras noted."""

from __future__ import annotations

import asyncio
import os
import time
from dataclasses import dataclass, field

from maintd.checks.base import CheckResult, RunContext, Status
from maintd.clock import utc
from maintd.plan.types import format_duration
from maintd.tasks.backup_files import BackupFilesConfig, manifest
from maintd.tasks.backup_files.immediate import after_failure
from maintd.tasks.backup_files.repository import check_repository


async def run(cfg: BackupFilesConfig, ctx: RunContext) -> CheckResult:
    async def once() -> CheckResult:
        if cfg.tool != "manifest":
            return await check_repository(cfg, ctx)
        return await asyncio.to_thread(verify_manifest, cfg, ctx)

    return await after_failure(await once(), cfg.backup_command, ctx, once)


@dataclass
class _Findings:
    limit: int
    status: Status = Status.ok
    lines: list[str] = field(default_factory=list)
    hidden: int = 0

    def add(self, status: Status, line: str) -> None:
        self.status = max(self.status, status, key=lambda s: s.rank)
        if len(self.lines) < self.limit:
            self.lines.append(line)
        else:
            self.hidden += 1


def verify_manifest(cfg: BackupFilesConfig, ctx: RunContext) -> CheckResult:
    """Blocking (it reads every file): the caller runs it in a thread."""
    path = cfg.manifest or ctx.target.connection.get("manifest")
    if not path:
        return CheckResult(
            Status.unknown,
            f"no manifest: set params.manifest or target {ctx.target.name}'s connection.manifest",
        )
    try:
        wanted = manifest.read(str(path))
    except manifest.ManifestError as exc:
        return CheckResult(Status.critical, str(exc))
    root = cfg.root or wanted.root
    found = _Findings(cfg.list_limit)
    age = ctx.clock.now() - utc(wanted.created_at)
    if cfg.max_age is not None and age > cfg.max_age:
        found.add(
            Status.critical,
            f"backup is {format_duration(age)} old (manifest written {wanted.created_at.isoformat()}), "
            f"more than max_age {format_duration(cfg.max_age)}",
        )
    started = time.perf_counter()
    total = 0
    paths = [os.path.join(root, e.path) for e in wanted.files]
    for entry, done in zip(
        wanted.files, manifest.hash_files(paths, wanted.algo, threads=cfg.threads), strict=True
    ):
        total += done.size
        if done.error:
            found.add(Status.critical, f"{entry.path}: {_missing_or(done.error)}")
        elif done.size != entry.size:
            found.add(Status.critical, f"{entry.path}: {done.size} bytes, the manifest says {entry.size}")
        elif done.digest != entry.digest:
            found.add(
                Status.critical,
                f"{entry.path}: {wanted.algo} {done.digest[:16]}… differs from the manifest's "
                f"{entry.digest[:16]}…",
            )
    seconds = time.perf_counter() - started
    extras = _extras(root, path, {e.path for e in wanted.files}, cfg, found)
    metrics = {
        "files": float(len(wanted.files)),
        "bytes": float(total),
        "age_seconds": round(age.total_seconds(), 3),
        "verify_seconds": round(seconds, 6),
        "extra_files": float(extras),
    }
    problems = len(found.lines) + found.hidden
    head = (
        f"manifest {path}: {len(wanted.files)} files, {total / 2**20:.1f} MiB verified ({wanted.algo}) "
        f"in {seconds:.2f}s under {root}"
    )
    if problems:
        head += f"; {problems} problem{'s' if problems != 1 else ''}"
    more = [f"... and {found.hidden} more"] if found.hidden else []
    return CheckResult(found.status, "\n".join([head, *found.lines, *more]), metrics)


def _missing_or(error: str) -> str:
    return "missing" if error == "No such file or directory" else f"cannot read: {error}"


def _extras(root: str, manifest_path: str, known: set[str], cfg: BackupFilesConfig, found: _Findings) -> int:
    if cfg.extra_files == "ignore" or not os.path.isdir(root):
        return 0
    skipped = os.path.abspath(manifest_path)
    try:
        extras = [p for p in manifest.walk(root, skip=lambda p: p == skipped) if p not in known]
    except manifest.ManifestError as exc:
        found.add(Status.critical, f"cannot list {exc}")
        return 0
    status = Status.warning if cfg.extra_files == "warning" else Status.critical
    for extra in extras:
        found.add(status, f"{extra}: not in the manifest")
    return len(extras)
