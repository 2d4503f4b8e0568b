"""One right-sizing run: sample the metrics API, judge each container, read quotas and growth."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from maintd.checks.base import CheckResult, RunContext, Status
from maintd.checks.kubernetes.access import connection_settings
from maintd.checks.kubernetes.api import ApiFailure, connect, list_all
from maintd.settings import Settings
from maintd.store.db import StoreError
from maintd.tasks.right_sizing import RightSizingConfig
from maintd.tasks.right_sizing.kube import collection, items, quantity
from maintd.tasks.right_sizing.quota import growth, quota_uses
from maintd.tasks.right_sizing.usage import Container, containers_of, judge

METRICS = "/apis/metrics.k8s.io/v1beta1"


async def run(config: RightSizingConfig, ctx: RunContext) -> CheckResult:
    status, lines = Status.ok, list[str]()
    metrics: dict[str, float] = {}
    details: list[dict[str, Any]] = []
    memo: dict[str, Any] | None = None
    if config.kubernetes is not None:
        try:
            status, lines, memo, details = await _cluster(config, ctx, metrics)
        except ApiFailure as failure:
            return CheckResult(failure.status, f"kubernetes: {failure.reason}")
    if config.growth is not None:
        grown, more = await _growth(config, ctx, metrics)
        status = max(status, grown, key=lambda s: s.rank)
        lines += more
    under = sum(1 for d in details if d["verdict"] == "under-provisioned")
    head = (
        f"{len(details)} recommendations ({under} under-provisioned, {len(details) - under} over-provisioned)"
    )
    output = "\n".join([head, *lines])
    return CheckResult(status, output, metrics, memo=memo)


async def _cluster(
    config: RightSizingConfig, ctx: RunContext, metrics: dict[str, float]
) -> tuple[Status, list[str], dict[str, Any], list[dict[str, Any]]]:
    assert config.kubernetes is not None
    timeout = config.timeout.total_seconds()
    cluster = await connect(connection_settings(config.kubernetes, ctx))
    try:
        scopes: list[str | None] = list(config.namespaces) or [None]
        pods: list[dict[str, Any]] = []
        usage: list[dict[str, Any]] = []
        quotas: list[dict[str, Any]] = []
        for ns in scopes:
            pods += await list_all(cluster, "pods", ns, label_selector=None, chunk_size=500,
                                   timeout=lambda: timeout)  # fmt: skip
            usage += await items(cluster, collection(METRICS, "pods", ns), timeout, missing_ok=True)
            quotas += await items(cluster, collection("/api/v1", "resourcequotas", ns), timeout)
    finally:
        await cluster.aclose()
    containers, owners = containers_of(pods)
    saved = (await ctx.memo()).get("samples") or {}
    _sample(containers, owners, usage, saved, config.keep_samples)
    recs = [
        r
        for c in containers.values()
        for r in judge(
            c, headroom=config.headroom, near_limit=config.near_limit, min_samples=config.min_samples
        )
    ]
    lines = [
        r.line() for r in sorted(recs, key=lambda r: (r.verdict != "under-provisioned", r.key, r.resource))
    ]
    status = Status.warning if any(r.verdict == "under-provisioned" for r in recs) else Status.ok
    if not usage:
        lines.append("no PodMetrics: is metrics-server installed? (GET /apis/metrics.k8s.io/v1beta1)")
    for use, used, hard in quota_uses(quotas):
        share = use.share
        if share >= config.quota_crit:
            status, mark = Status.critical, "critical: "
        elif share >= config.quota_warn:
            status, mark = max(status, Status.warning, key=lambda s: s.rank), "warning: "
        else:
            mark = ""
        lines.append(mark + use.line(used, hard))
        metrics[f"quota_share.{use.namespace}.{use.quota}.{use.resource}"] = round(share, 4)
    judged = sum(1 for c in containers.values() if len(c.samples["cpu"]) >= config.min_samples)
    metrics.update({"containers": float(len(containers)), "containers_judged": float(judged),
                    "recommendations": float(len(recs))})  # fmt: skip
    memo = {"samples": {c.key: c.samples for c in containers.values()}}
    return status, lines, memo, [r.detail() for r in recs]


def _sample(
    containers: dict[str, Container],
    owners: dict[tuple[str, str], str],
    usage: list[dict[str, Any]],
    saved: dict[str, Any],
    keep: int,
) -> None:
    """The saved samples of each container, then this run's (one per pod), the newest ``keep`` kept."""
    for c in containers.values():
        old = saved.get(c.key) or {}
        for resource, values in c.samples.items():
            values.extend(float(v) for v in old.get(resource) or [])
    for pod in usage:
        meta = pod.get("metadata") or {}
        workload = owners.get((str(meta.get("namespace")), str(meta.get("name"))))
        for entry in pod.get("containers") or [] if workload else []:
            found = containers.get(f"{meta.get('namespace')}/{workload}/{entry.get('name')}")
            for resource, values in found.samples.items() if found else []:
                try:
                    values.append(quantity((entry.get("usage") or {})[resource]))
                except (KeyError, ValueError):
                    continue
    for c in containers.values():
        for resource in c.samples:
            c.samples[resource] = c.samples[resource][-keep:]


async def _growth(
    config: RightSizingConfig, ctx: RunContext, metrics: dict[str, float]
) -> tuple[Status, list[str]]:
    assert config.growth is not None
    url = config.growth.database or Settings.from_env().database_url
    try:
        found = await asyncio.to_thread(growth, url, config.growth, ctx.clock.now())
    except (StoreError, SQLAlchemyError, OSError) as exc:
        return Status.critical, [f"growth: cannot read the runs: {str(exc).splitlines()[0]}"]
    status, lines = Status.ok, []
    for line in found:
        mark = ""
        if line.days is not None and timedelta(days=line.days) <= config.growth.crit_within:
            status, mark = Status.critical, "critical: "
        elif line.days is not None and timedelta(days=line.days) <= config.growth.warn_within:
            status, mark = max(status, Status.warning, key=lambda s: s.rank), "warning: "
        lines.append(f"{mark}growth {line.text}")
        if line.days is not None:
            metrics[f"days_to_full.{line.series}"] = round(line.days, 1)
    return status, lines
