"""One security-policies run: manifests vs live objects (drift's comparison), then one change."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from maintd.checks.base import Change, CheckResult, RunContext, Status
from maintd.checks.kubernetes.access import connection_settings
from maintd.checks.kubernetes.api import ApiFailure, connect
from maintd.tasks.change_drafts import Ask, DraftFailed, draft
from maintd.tasks.drift.items import Item, Verdict
from maintd.tasks.drift.manifests import Manifest, compare, fetch, load
from maintd.tasks.security_policies import SecurityPoliciesConfig
from maintd.tasks.security_policies.bundle import encode, entry, write

REQUESTER = "security-policies"


async def run(config: SecurityPoliciesConfig, ctx: RunContext) -> CheckResult:
    directory = Path(config.directory)
    if not directory.is_dir():
        why = "not a directory" if directory.exists() else "no such directory"
        return CheckResult(Status.unknown, f"security policies {directory}: {why}")
    loaded = await asyncio.to_thread(load, directory, ["."], config.namespace)
    broken = [x for x in loaded if isinstance(x, Item)]
    manifests = [x for x in loaded if isinstance(x, Manifest)]
    settings = None
    try:
        settings = connection_settings(config.kubernetes, ctx)
        cluster = await connect(settings)
        try:
            lives = [await fetch(cluster, m, config.timeout.total_seconds()) for m in manifests]
        finally:
            await cluster.aclose()
    except ApiFailure as failure:
        return CheckResult(failure.status, f"kubernetes: {failure.reason}")
    items = [compare(m, live, sensitive=False) for m, live in zip(manifests, lives, strict=True)]
    differ = [
        (m, live, i) for m, live, i in zip(manifests, lives, items, strict=True) if i.verdict is Verdict.drift
    ]
    lines = [
        f"{len(manifests)} policy objects, {len(differ)} differ from the cluster, {len(broken)} unreadable"
    ]
    for item in [*broken, *(i for _, _, i in differ)]:
        lines.append(f"{item.verdict.upper()} {item.name}: {'; '.join(item.reasons)}")
        lines += item.diff[: config.max_diff_lines]
    metrics = {
        "policies": float(len(manifests)),
        "differ": float(len(differ)),
        "unreadable": float(len(broken)),
    }
    status = Status.critical if broken else Status.warning if differ else Status.ok
    result = CheckResult(status, "\n".join(lines), metrics)
    if not differ or config.change is None:
        return result
    if ctx.dry_run:
        result.output += f"\ndry run: would write a bundle to {config.bundles_dir} and draft a change"
        result.changes.append(Change("draft-change", "security-policies", {"objects": len(differ)}))
        return result
    cluster_spec = {"mode": settings.mode, "kubeconfig": settings.kubeconfig, "context": settings.context}
    entries = [entry(m, live) for m, live, _ in differ]
    return await _propose(config, ctx, entries, cluster_spec, result)


async def _propose(
    config: SecurityPoliciesConfig,
    ctx: RunContext,
    entries: list[dict[str, Any]],
    cluster: dict[str, Any],
    result: CheckResult,
) -> CheckResult:
    assert config.change is not None
    data = encode(entries, cluster, f"{ctx.task.name}/{ctx.target.name}")
    try:
        path, digest = await asyncio.to_thread(write, Path(config.bundles_dir), data)
    except OSError as exc:
        result.status = Status.critical
        result.output += (
            f"\ncannot write the bundle to {exc.filename or config.bundles_dir}: {exc.strerror or exc}"
        )
        return result
    labels = [e["label"] for e in entries]
    ask = Ask(
        title=f"apply {len(entries)} security policies ({path.name}) on {ctx.target.name}",
        description=f"Policies of {config.directory} that differ from the cluster (bundle SHA-256 {digest}); "
        "applied by server-side apply, the live objects saved in the bundle as the rollback:\n"
        + "\n".join(f"- {label}" for label in labels),
        params={"bundle": str(path), "sha256": digest},
        target=ctx.target.name,
    )
    try:
        drafted = await draft(config.change, ask, REQUESTER, ctx.clock.now())
    except DraftFailed as exc:
        result.status = Status.critical
        result.output += f"\nno change drafted: {exc}"
        return result
    said = "drafted" if drafted.new else f"already drafted ({drafted.state})"
    result.output += f"\nchange {drafted.change_id} {said}: submit it to apply these; bundle {path}"
    result.metrics["change_id"] = float(drafted.change_id)
    result.changes.append(Change("write", str(path), {"sha256": digest, "objects": labels}))
    if drafted.new:
        result.changes.append(Change("draft-change", f"change:{drafted.change_id}", {"bundle": str(path)}))
    return result
