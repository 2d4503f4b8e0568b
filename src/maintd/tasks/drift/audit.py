"""One drift audit: the checkout's commit, files and directories, manifests, then the report."""

from __future__ import annotations

import asyncio
from pathlib import Path

from maintd.checks.base import CheckResult, RunContext, Status
from maintd.checks.command.process import execute
from maintd.checks.kubernetes.access import connection_settings
from maintd.checks.kubernetes.api import ApiFailure, connect
from maintd.tasks.drift import DriftConfig
from maintd.tasks.drift.files import compare_directory, compare_file
from maintd.tasks.drift.items import Item
from maintd.tasks.drift.manifests import Manifest, compare, fetch, load
from maintd.tasks.drift.report import report

GIT_OUTPUT_LIMIT = 64_000


async def run(cfg: DriftConfig, ctx: RunContext) -> CheckResult:
    desired = Path(cfg.desired)
    if not desired.is_dir():
        why = "not a directory" if desired.exists() else "no such directory"
        return CheckResult(Status.unknown, f"drift: desired state {desired}: {why}")
    commit = await _commit(cfg, ctx, desired) if cfg.record_commit else None
    items = await asyncio.to_thread(_local, cfg, desired)
    if cfg.manifests:
        items += await _manifests(cfg, ctx, desired)
    return report(cfg, desired, commit, items)


def _local(cfg: DriftConfig, desired: Path) -> list[Item]:
    return [compare_file(spec, desired, cfg.root) for spec in cfg.files] + [
        compare_directory(spec, desired, cfg.root) for spec in cfg.directories
    ]


async def _commit(cfg: DriftConfig, ctx: RunContext, desired: Path) -> str:
    """``commit abc123...`` (``, N uncommitted changes``), or why there is none."""
    # safe.directory for this one path: a checkout owned by another user is read, never written.
    # --no-optional-locks: else `git status` rewrites .git/index (its stat cache), a read-only audit
    # writing into the desired state's checkout.
    git = ["git", "--no-optional-locks", "-c", f"safe.directory={desired.resolve()}", "-C", str(desired)]
    limit = max(1.0, min(10.0, ctx.seconds_left() / 4))
    try:
        head = await execute(
            [*git, "rev-parse", "HEAD"], limit=GIT_OUTPUT_LIMIT, tracker=ctx.processes, time_limit=limit
        )
        if head.code != 0:
            return "not a git checkout"
        status = await execute(
            [*git, "status", "--porcelain", "--untracked-files=normal"],
            limit=GIT_OUTPUT_LIMIT,
            tracker=ctx.processes,
            time_limit=limit,
        )
    except OSError as exc:
        return f"no commit recorded: cannot run git: {(exc.strerror or str(exc)).lower()}"
    text = f"commit {head.output.decode().strip()}"
    changed = [line for line in status.output.decode(errors="replace").splitlines() if line.strip()]
    if status.code == 0 and changed:
        text += f", {len(changed)} uncommitted change{'s' if len(changed) != 1 else ''}"
    return text


async def _manifests(cfg: DriftConfig, ctx: RunContext, desired: Path) -> list[Item]:
    loaded = await asyncio.to_thread(load, desired, cfg.manifests, cfg.kubernetes.namespace)
    items = [x for x in loaded if isinstance(x, Item)]
    manifests = [x for x in loaded if isinstance(x, Manifest)]
    if not manifests:
        return items
    try:
        settings = connection_settings(cfg.kubernetes, ctx)
        async with asyncio.timeout(max(0.001, ctx.seconds_left())):
            cluster = await connect(settings)
    except ApiFailure as failure:
        return items + [_unread(m, failure.reason) for m in manifests]
    except TimeoutError:
        return items + [_unread(m, "loading credentials timed out") for m in manifests]
    try:
        for manifest in manifests:
            left = ctx.seconds_left()
            try:
                async with asyncio.timeout(max(0.001, left)):
                    live = await fetch(cluster, manifest, max(0.001, left - min(1.0, left / 10)))
            except ApiFailure as failure:
                items.append(_unread(manifest, f"{cluster.where}: {failure.reason}"))
                continue
            except TimeoutError:
                items.append(_unread(manifest, f"{cluster.where}: no answer before the deadline"))
                continue
            items.append(compare(manifest, live, manifest.kind in cfg.sensitive_kinds))
    finally:
        await cluster.aclose()
    return items


def _unread(manifest: Manifest, reason: str) -> Item:
    item = Item("manifest", manifest.label)
    item.failed(f"cannot read the live object: {reason}")
    return item
