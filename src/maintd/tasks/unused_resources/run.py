"""One unused-resources run: list, write the removal list, draft the change (never remove)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from maintd.checks.base import Change, CheckResult, RunContext, Status, format_bytes
from maintd.checks.kubernetes.access import connection_settings
from maintd.checks.kubernetes.api import ApiFailure, ConnectionSettings, connect, list_all
from maintd.tasks.change_drafts import Ask, DraftFailed, draft
from maintd.tasks.right_sizing.kube import collection, items
from maintd.tasks.unused_resources import UnusedResourcesConfig
from maintd.tasks.unused_resources.listing import (
    Unused,
    mounted_claims,
    old_files,
    released_volumes,
    removal_list,
    stale_claims,
    unused_images,
    write_list,
)

REQUESTER = "unused-resources"


async def run(config: UnusedResourcesConfig, ctx: RunContext) -> CheckResult:
    now = ctx.clock.now()
    found: list[Unused] = []
    problems: list[str] = []
    for rule in config.files:
        listed, trouble = old_files(rule, now)
        found += listed
        problems += trouble
    memo: dict[str, Any] = {}
    cluster: dict[str, Any] | None = None
    if config.kubernetes is not None:
        try:
            settings = connection_settings(config.kubernetes, ctx)
            objects, memo = await _cluster(config, ctx, settings)
        except ApiFailure as failure:
            return CheckResult(failure.status, f"kubernetes: {failure.reason}")
        found += objects
        cluster = {"mode": settings.mode, "kubeconfig": settings.kubeconfig, "context": settings.context,
                   "server": settings.server}  # fmt: skip
    found, images = [u for u in found if u.kind != "image"], [u for u in found if u.kind == "image"]
    total = sum(u.size for u in found)
    metrics = {"unused": float(len(found)), "unused_bytes": float(total), "problems": float(len(problems))}
    lines = [f"{len(found)} unused ({format_bytes(total)})", *(u.line() for u in found)]
    lines += [f"problem: {p}" for p in problems]
    status = Status.warning if problems else Status.ok
    if images:
        lines.append(f"{len(images)} images no pod on their node runs (listed only; not in a change):")
        lines += [f"  {u.line()} ({format_bytes(u.size)})" for u in images]
        metrics["unused_images"] = float(len(images))
    if not found or config.change is None:
        return CheckResult(status, "\n".join(lines), metrics, memo=memo or None)
    if ctx.dry_run:
        lines.append(f"dry run: would write the removal list to {config.lists_dir} and draft a change")
        return CheckResult(status, "\n".join(lines), metrics, [Change("draft-change", "unused-resources")])
    result = await _propose(config, ctx, found, cluster, CheckResult(status, "\n".join(lines), metrics))
    result.memo = memo or None
    return result


async def _propose(
    config: UnusedResourcesConfig,
    ctx: RunContext,
    found: list[Unused],
    cluster: dict[str, Any] | None,
    listed: CheckResult,
) -> CheckResult:
    """Write the removal list and draft the change removing exactly it (once per list)."""
    assert config.change is not None
    total = sum(u.size for u in found)
    data = removal_list(found, cluster, f"{ctx.task.name}/{ctx.target.name}")
    try:
        path, digest = write_list(Path(config.lists_dir), data)
    except OSError as exc:
        listed.status = Status.critical
        listed.output += f"\ncannot write the removal list to {exc.filename or config.lists_dir}: "
        listed.output += str(exc.strerror or exc)
        return listed
    ask = Ask(
        title=f"remove {len(found)} unused resources ({format_bytes(total)}) listed in {path.name} "
        f"on {ctx.target.name}",
        description=f"Listed by the unused-resources task {ctx.task.name}; the list (SHA-256 {digest}):\n"
        + "\n".join(f"- {u.line()}" for u in found),
        params={"list": str(path), "sha256": digest},
        target=ctx.target.name,
    )
    try:
        drafted = await draft(config.change, ask, REQUESTER, ctx.clock.now())
    except DraftFailed as exc:
        listed.status = Status.critical
        listed.output += f"\nno change drafted: {exc}"
        return listed
    said = "drafted" if drafted.new else f"already drafted ({drafted.state})"
    listed.output += f"\nchange {drafted.change_id} {said}: submit it to remove these; list {path}"
    listed.metrics["change_id"] = float(drafted.change_id)
    listed.changes.append(Change("write", str(path), {"sha256": digest, "items": len(found)}))
    if drafted.new:
        detail = {"list": str(path), "sha256": digest}
        listed.changes.append(Change("draft-change", f"change:{drafted.change_id}", detail))
    return listed


async def _cluster(
    config: UnusedResourcesConfig, ctx: RunContext, settings: ConnectionSettings
) -> tuple[list[Unused], dict[str, Any]]:
    timeout = config.timeout.total_seconds()
    cluster = await connect(settings)
    try:
        pods: list[dict[str, Any]] = []
        claims: list[dict[str, Any]] = []
        scopes: list[str | None] = list(config.namespaces) or [None]
        for ns in scopes:
            pods += await list_all(cluster, "pods", ns, label_selector=None, chunk_size=500,
                                   timeout=lambda: timeout)  # fmt: skip
            claims += await items(cluster, collection("/api/v1", "persistentvolumeclaims", ns), timeout)
        volumes = await items(cluster, "/api/v1/persistentvolumes", timeout)
        nodes = await list_all(cluster, "nodes", None, label_selector=None, chunk_size=500,
                               timeout=lambda: timeout) if config.images else []  # fmt: skip
        if config.images and config.namespaces:  # the images' users may run in any namespace
            pods = await list_all(cluster, "pods", None, label_selector=None, chunk_size=500,
                                  timeout=lambda: timeout)  # fmt: skip
    finally:
        await cluster.aclose()
    saved = await ctx.memo()
    now = ctx.clock.now()
    stale, unmounted = stale_claims(claims, mounted_claims(pods), saved.get("unmounted_since") or {}, now,
                                    config.stale_after)  # fmt: skip
    released, seen = released_volumes(volumes, saved.get("released_since") or {}, now, config.released_after)
    images = unused_images(nodes, pods)
    return stale + released + images, {"unmounted_since": unmounted, "released_since": seen}
