"""``kubernetes``: pods, workloads and nodes of a cluster (seed: every pod Running or Completed).

Reads the API with the official async client (kubernetes_asyncio): kubeconfig,
in-cluster service account, or a server URL with a bearer token from the
target's secrets. Lists pods, deployments, statefulsets, daemonsets and nodes
(paged, concurrently, every request bounded by the run's deadline) and reports
each unhealthy one on its own line.
"""

from __future__ import annotations

import asyncio
import re
import time
from datetime import datetime, timedelta
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from maintd.checks.base import CheckResult, Kind, RunContext, Status
from maintd.checks.kubernetes.access import ClusterAccess, connection_settings
from maintd.checks.kubernetes.api import ApiFailure, Cluster, connect, list_all
from maintd.checks.kubernetes.health import (
    Problem,
    Thresholds,
    assess_daemonsets,
    assess_deployments,
    assess_nodes,
    assess_pods,
    assess_statefulsets,
)
from maintd.plan.types import Duration

Resource = Literal["pods", "deployments", "statefulsets", "daemonsets", "nodes"]
RESOURCES: tuple[Resource, ...] = ("pods", "deployments", "statefulsets", "daemonsets", "nodes")
MAX_PROBLEM_LINES = 50
_NAMESPACE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


class KubernetesConfig(ClusterAccess):
    namespaces: list[str] = Field(
        default=[],
        description="namespaces to check; default: the target's connection.namespace(s), else all",
    )
    label_selector: str | None = Field(
        default=None, description="only pods and workloads matching this selector, e.g. app=api,tier!=batch"
    )
    node_selector: str | None = Field(default=None, description="only nodes matching this label selector")
    resources: list[Resource] = Field(default=list(RESOURCES), min_length=1, description="what to check")
    grace: Duration = Field(
        default=timedelta(minutes=5),
        description="how long a pod may be Pending, not ready or Terminating, or a node NotReady, "
        "before it is a problem",
    )
    max_restarts: int = Field(default=5, ge=0, description="warning when a container restarted more often")
    oom_window: Duration = Field(
        default=timedelta(hours=1),
        description="an OOMKilled last state this recent is a warning; 0: however old",
    )
    min_pods: int = Field(default=0, ge=0, description="critical when fewer pods match")
    cordoned: Literal["ok", "warning", "critical"] = Field(
        default="warning", description="the status a cordoned (unschedulable) node gives"
    )
    chunk_size: int = Field(
        default=500, ge=1, le=10_000, description="objects per list request; pages follow 'continue'"
    )

    @field_validator("namespaces")
    @classmethod
    def _namespace_names(cls, value: list[str]) -> list[str]:
        for name in value:
            if not _NAMESPACE.fullmatch(name):
                raise ValueError(f"{name!r} is not a namespace name (lower-case letters, digits and '-')")
        return value

    @model_validator(mode="after")
    def _one_source(self) -> KubernetesConfig:
        chosen = [n for n in ("kubeconfig", "in_cluster", "server") if getattr(self, n)]
        if len(chosen) > 1:
            raise ValueError(f"choose one way to reach the cluster, not {' and '.join(chosen)}")
        return self


class KubernetesCheck:
    def __init__(self, config: KubernetesConfig) -> None:
        self.config = config

    async def run(self, ctx: RunContext) -> CheckResult:
        cfg = self.config
        try:
            settings = connection_settings(cfg, ctx)
        except ApiFailure as failure:
            return CheckResult(failure.status, f"kubernetes: {failure.reason}")
        namespaces = _namespaces(cfg, ctx)
        if isinstance(namespaces, str):
            return CheckResult(Status.unknown, f"kubernetes: {namespaces}")
        started = time.perf_counter()
        left = ctx.seconds_left()
        if left <= 0:
            return CheckResult(Status.unknown, "kubernetes: the run's deadline has already passed")
        try:
            async with asyncio.timeout(left):
                cluster = await connect(settings)
        except ApiFailure as failure:
            return CheckResult(failure.status, f"kubernetes: {failure.reason}")
        except TimeoutError:
            return CheckResult(Status.critical, f"kubernetes: loading credentials took over {left:.1f} s")
        try:
            left = max(ctx.seconds_left(), 0.001)
            try:
                async with asyncio.timeout(left):
                    read = await self._read(ctx, cluster, namespaces)
            except TimeoutError:
                return CheckResult(
                    Status.critical,
                    f"kubernetes {cluster.where}: the API server did not answer within {left:.1f} s",
                    {"api_requests": float(cluster.requests)},
                )
        finally:
            await cluster.aclose()
        return self._report(ctx, cluster, namespaces, read, time.perf_counter() - started)

    async def _read(
        self, ctx: RunContext, cluster: Cluster, namespaces: list[str]
    ) -> list[tuple[Resource, str | None, list[dict[str, Any]] | ApiFailure]]:
        cfg = self.config
        jobs: list[tuple[Resource, str | None]] = []
        for resource in RESOURCES:
            if resource in cfg.resources:
                scopes: list[str | None] = [None] if resource == "nodes" or not namespaces else [*namespaces]
                jobs += [(resource, scope) for scope in scopes]

        async def one(resource: Resource, namespace: str | None) -> list[dict[str, Any]] | ApiFailure:
            try:
                return await list_all(
                    cluster,
                    resource,
                    namespace,
                    label_selector=cfg.node_selector if resource == "nodes" else cfg.label_selector,
                    chunk_size=cfg.chunk_size,
                    timeout=lambda: _request_budget(ctx.seconds_left()),
                )
            except ApiFailure as failure:
                return failure

        answers = await asyncio.gather(*(one(resource, scope) for resource, scope in jobs))
        return [(resource, scope, answer) for (resource, scope), answer in zip(jobs, answers, strict=True)]

    def _report(
        self,
        ctx: RunContext,
        cluster: Cluster,
        namespaces: list[str],
        read: list[tuple[Resource, str | None, list[dict[str, Any]] | ApiFailure]],
        elapsed: float,
    ) -> CheckResult:
        cfg = self.config
        failures = [(r, scope, a) for r, scope, a in read if isinstance(a, ApiFailure)]
        where = f"kubernetes {cluster.where}"
        if len(failures) == len(read):
            # Nothing could be read: the reason is the result (usually one, shared by every request).
            reasons = list(dict.fromkeys(f.reason for _r, _s, f in failures))
            status = max((f.status for _r, _s, f in failures), key=lambda s: s.rank)
            return CheckResult(
                status,
                "\n".join([f"{where}: {reasons[0]}", *reasons[1:]]),
                {"api_requests": float(cluster.requests)},
            )

        items: dict[Resource, list[dict[str, Any]]] = {}
        for resource, _scope, answer in read:
            if not isinstance(answer, ApiFailure):
                items.setdefault(resource, []).extend(answer)

        now = ctx.clock.now()
        limits = Thresholds(cfg.grace, cfg.max_restarts, cfg.oom_window, Status(cfg.cordoned))
        problems: list[Problem] = [
            Problem(failure.status, "api", resource + (f" in {scope}" if scope else ""), [failure.reason])
            for resource, scope, failure in failures
        ]
        metrics: dict[str, float] = {}
        parts: list[str] = []
        for resource in RESOURCES:
            if resource not in cfg.resources:
                continue
            if resource not in items:
                parts.append(f"{resource} not read")
                continue
            found, counts = _assess(resource, items[resource], now, limits)
            problems += found
            metrics.update(counts)
            parts.append(_part(resource, counts, cfg))
            if resource == "pods" and counts["pods_total"] < cfg.min_pods:
                problems.append(
                    Problem(
                        Status.critical,
                        "pods",
                        "pods",
                        [f"{counts['pods_total']:.0f} found, fewer than min_pods {cfg.min_pods}"],
                    )
                )

        problems.sort(key=Problem.sort_key)
        status = max((p.status for p in problems), key=lambda s: s.rank, default=Status.ok)
        metrics["problems"] = float(len(problems))
        metrics["api_requests"] = float(cluster.requests)
        metrics["api_seconds"] = round(elapsed, 6)

        scope = (
            "all namespaces"
            if not namespaces
            else f"namespace{'s' if len(namespaces) > 1 else ''} {', '.join(namespaces)}"
        )
        if cfg.label_selector:
            scope += f", selector {cfg.label_selector}"
        tail = f"; {len(problems)} problem{'s' if len(problems) != 1 else ''}" if problems else ""
        lines = [f"{where}, {scope}: {'; '.join(parts)}{tail}"]
        lines += [p.line() for p in problems[:MAX_PROBLEM_LINES]]
        if len(problems) > MAX_PROBLEM_LINES:
            lines.append(f"… and {len(problems) - MAX_PROBLEM_LINES} more problems")
        return CheckResult(status, "\n".join(lines), metrics)


def _request_budget(left: float) -> float:
    """Each request stops a little before the run does, so one hung list leaves the others' verdicts."""
    return max(0.001, left - min(1.0, left / 10))


def _assess(
    resource: Resource, items: list[dict[str, Any]], now: datetime, limits: Thresholds
) -> tuple[list[Problem], dict[str, float]]:
    if resource == "pods":
        return assess_pods(items, now, limits)
    if resource == "deployments":
        return assess_deployments(items)
    if resource == "statefulsets":
        return assess_statefulsets(items)
    if resource == "daemonsets":
        return assess_daemonsets(items)
    return assess_nodes(items, now, limits)


def _part(resource: Resource, counts: dict[str, float], cfg: KubernetesConfig) -> str:
    """The summary's words for one resource: how many are fine, and how close to the thresholds."""

    def n(key: str) -> int:
        return int(counts[key])

    if resource == "pods":
        total = n("pods_total")
        text = f"pods {total - n('pods_unhealthy')}/{total} healthy"
        if cfg.min_pods:
            text += f" (min {cfg.min_pods})"
        return text + f", most restarts {n('restarts_max')} (warning above {cfg.max_restarts})"
    if resource == "nodes":
        text = f"nodes {n('nodes_ready')}/{n('nodes_total')} Ready"
        if n("nodes_pressure"):
            text += f", {n('nodes_pressure')} under pressure"
        if n("nodes_cordoned"):
            text += f", {n('nodes_cordoned')} cordoned"
        return text
    total = n(f"{resource}_total")
    word = "ready" if resource == "statefulsets" else "available"
    return f"{resource} {total - n(f'{resource}_unavailable')}/{total} {word}"


def _namespaces(cfg: KubernetesConfig, ctx: RunContext) -> list[str] | str:
    """The namespaces to read ([] = all), or why the target's connection names them wrongly."""
    if cfg.namespaces:
        return list(dict.fromkeys(cfg.namespaces))
    conn = ctx.target.connection
    value = conn.get("namespaces", conn.get("namespace"))
    if value is None:
        return []
    names = [value] if isinstance(value, str) else value
    if not isinstance(names, list) or not all(isinstance(v, str) and _NAMESPACE.fullmatch(v) for v in names):
        return f"target {ctx.target.name}'s connection.namespace(s) is not a namespace name or a list of them"
    return list(dict.fromkeys(names))


KIND = Kind(
    name="kubernetes",
    config=KubernetesConfig,
    build=KubernetesCheck,
    summary="pods, deployments, statefulsets, daemonsets and nodes of a cluster (kubernetes_asyncio)",
)
