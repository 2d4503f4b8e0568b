"""Containers' requests, limits and measured use, and what they say: over- or under-provisioned."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from maintd.tasks.right_sizing.kube import quantity

RESOURCES = ("cpu", "memory")


@dataclass
class Container:
    """One container of one workload (all its pods), with every sample of its use."""

    namespace: str
    workload: str  # "Deployment/api", "StatefulSet/postgres", "Pod/debug"
    name: str
    requests: dict[str, float] = field(default_factory=dict)
    limits: dict[str, float] = field(default_factory=dict)
    oom_killed: int = 0  # containers of its pods whose last end was OOMKilled
    samples: dict[str, list[float]] = field(default_factory=lambda: {r: [] for r in RESOURCES})

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.workload}/{self.name}"


@dataclass(frozen=True)
class Recommendation:
    key: str
    resource: str  # cpu or memory
    verdict: str  # over-provisioned or under-provisioned
    field: str  # requests or limits
    current: float | None
    suggested: float
    p95: float
    peak: float
    samples: int
    how: str

    def line(self) -> str:
        now = "none" if self.current is None else show(self.resource, self.current)
        return (
            f"{self.key}: {self.resource} {self.verdict}: {self.field} {now} -> "
            f"{show(self.resource, self.suggested)} ({self.how})"
        )

    def detail(self) -> dict[str, Any]:
        return {"key": self.key, "resource": self.resource, "verdict": self.verdict, "field": self.field,
                "current": self.current, "suggested": self.suggested, "p95": self.p95, "peak": self.peak,
                "samples": self.samples, "how": self.how}  # fmt: skip


def show(resource: str, value: float) -> str:
    if resource == "cpu":
        return f"{value * 1000:.0f}m"
    return f"{value / 2**20:.0f}Mi"


def workload_of(pod: dict[str, Any]) -> str:
    """The controller a pod belongs to; a ReplicaSet made by a Deployment names the Deployment."""
    meta = pod.get("metadata") or {}
    for owner in meta.get("ownerReferences") or []:
        if owner.get("controller"):
            kind, name = str(owner.get("kind")), str(owner.get("name"))
            template_hash = (meta.get("labels") or {}).get("pod-template-hash")
            if kind == "ReplicaSet" and template_hash and name.endswith(f"-{template_hash}"):
                return f"Deployment/{name[: -len(template_hash) - 1]}"
            if kind == "Job" and name.rsplit("-", 1)[-1].isdigit():
                return f"CronJob/{name.rsplit('-', 1)[0]}"
            return f"{kind}/{name}"
    return f"Pod/{meta.get('name')}"


def containers_of(pods: list[dict[str, Any]]) -> tuple[dict[str, Container], dict[tuple[str, str], str]]:
    """Containers by key, and each running pod's (namespace, name) -> workload."""
    found: dict[str, Container] = {}
    owners: dict[tuple[str, str], str] = {}
    for pod in pods:
        if (pod.get("status") or {}).get("phase") not in ("Running", "Pending"):
            continue
        meta = pod.get("metadata") or {}
        namespace, workload = str(meta.get("namespace")), workload_of(pod)
        owners[(namespace, str(meta.get("name")))] = workload
        oom = {
            s.get("name")
            for s in (pod.get("status") or {}).get("containerStatuses") or []
            if ((s.get("lastState") or {}).get("terminated") or {}).get("reason") == "OOMKilled"
        }
        for spec in (pod.get("spec") or {}).get("containers") or []:
            c = Container(namespace, workload, str(spec.get("name")))
            c = found.setdefault(c.key, c)
            resources = spec.get("resources") or {}
            for side, into in (("requests", c.requests), ("limits", c.limits)):
                for resource in RESOURCES:
                    if resource in (resources.get(side) or {}):
                        into[resource] = quantity(resources[side][resource])
            c.oom_killed += spec.get("name") in oom
    return found, owners


def percentile(values: list[float], share: float) -> float:
    """Nearest-rank percentile (the value at rank ceil(share x n) of the sorted values)."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


def judge(c: Container, *, headroom: float, near_limit: float, min_samples: int) -> list[Recommendation]:
    out: list[Recommendation] = []
    for resource in RESOURCES:
        values = c.samples[resource]
        if resource == "memory" and c.oom_killed:
            out.append(_oom(c, values, headroom))
        elif len(values) >= min_samples:
            found = _judge_one(c, resource, values, headroom, near_limit)
            out += [found] if found is not None else []
    return out


def _judge_one(
    c: Container, resource: str, values: list[float], headroom: float, near_limit: float
) -> Recommendation | None:
    p95, peak = percentile(values, 0.95), max(values)
    request, limit = c.requests.get(resource), c.limits.get(resource)
    watched = peak if resource == "memory" else p95  # memory over a limit is an OOM kill, not a delay

    def rec(verdict: str, side: str, current: float, suggested: float, how: str) -> Recommendation:
        return Recommendation(c.key, resource, verdict, side, current, _round(resource, suggested), p95, peak,
                              len(values), how)  # fmt: skip

    if limit and watched >= near_limit * limit:
        name = "peak" if resource == "memory" else "p95"
        how = f"{name} {show(resource, watched)} >= {near_limit:g} x limit {show(resource, limit)}; "
        how += f"suggested: {name} x {headroom:g} / {near_limit:g}"
        return rec("under-provisioned", "limits", limit, watched * headroom / near_limit, how)
    if request is not None and request > p95 * headroom:
        how = f"request {show(resource, request)} > p95 {show(resource, p95)} x headroom {headroom:g} "
        how += f"over {len(values)} samples; suggested: p95 x {headroom:g}"
        return rec("over-provisioned", "requests", request, p95 * headroom, how)
    if request is not None and p95 > request:
        how = f"p95 {show(resource, p95)} > request {show(resource, request)}: scheduled on less than it "
        how += f"uses; suggested: p95 x {headroom:g}"
        return rec("under-provisioned", "requests", request, p95 * headroom, how)
    return None


def _oom(c: Container, values: list[float], headroom: float) -> Recommendation:
    limit = c.limits.get("memory")
    peak = max(values) if values else 0.0
    base = max(limit or 0.0, peak)
    how = f"{c.oom_killed} container(s) last ended OOMKilled; suggested: max(limit, peak) x {headroom:g}"
    return Recommendation(
        key=c.key, resource="memory", verdict="under-provisioned", field="limits", current=limit,
        suggested=_round("memory", base * headroom), p95=percentile(values, 0.95) if values else 0.0,
        peak=peak, samples=len(values), how=how,
    )  # fmt: skip


def _round(resource: str, value: float) -> float:
    """Up to a whole millicore, or a whole MiB."""
    if resource == "cpu":
        return math.ceil(value * 1000) / 1000
    return float(math.ceil(value / 2**20) * 2**20)
