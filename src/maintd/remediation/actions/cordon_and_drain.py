"""``cordon_and_drain`` (node_pressure): mark the node unschedulable, then evict its pods.

Cordoning is ``PATCH /api/v1/nodes/<node>`` with ``spec.unschedulable: true``; draining
posts a ``policy/v1`` Eviction for every pod on the node except DaemonSet pods and mirror
(static) pods, as ``kubectl drain --ignore-daemonsets`` does, so PodDisruptionBudgets are
honoured (an eviction they refuse fails the execution, saying which pod). The node counts
towards the blast radius.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import Field

from maintd.checks.base import Change
from maintd.remediation.actions.kube import NAME, ClusterParams, KubeError, call, open_cluster, pods
from maintd.remediation.base import ActionContext, ActionKind, ActionResult, Refused, limit_blast

MIRROR = "kubernetes.io/config.mirror"


class DrainConfig(ClusterParams):
    node: str = Field(description="the node's name; ${label} is filled in")
    evict: bool = Field(default=True, description="evict the node's pods after cordoning it")


class CordonAndDrain:
    def __init__(self, config: DrainConfig) -> None:
        self.config = config

    async def execute(self, ctx: ActionContext) -> ActionResult:
        from kubernetes_asyncio import client

        cfg = self.config
        if not re.fullmatch(NAME, cfg.node):
            raise Refused(f"{cfg.node!r} is not a node name")
        limit_blast("nodes", [cfg.node], ctx.max_targets, selector=cfg.node)
        try:
            cluster = await open_cluster(cfg, ctx)
        except KubeError as exc:
            return ActionResult(False, str(exc))
        try:
            core = client.CoreV1Api(cluster.api)
            evicted = [] if not cfg.evict else _evictable(await pods(cluster, None, None, ctx), cfg.node)
            changes = [Change("cordon", f"node/{cfg.node}")]
            changes += [Change("evict", f"{ns}/{name}", {"node": cfg.node}) for ns, name in evicted]
            if ctx.dry_run:
                return ActionResult(
                    True, f"dry run: would cordon {cfg.node} and evict {len(evicted)} pods", changes
                )
            body: dict[str, Any] = {"spec": {"unschedulable": True}}
            await call(cluster, f"cordoning node {cfg.node}", core.patch_node, cfg.node, body, ctx=ctx)
            for namespace, name in evicted:
                eviction = {
                    "apiVersion": "policy/v1",
                    "kind": "Eviction",
                    "metadata": {"name": name, "namespace": namespace},
                }
                await call(
                    cluster,
                    f"evicting pod {namespace}/{name}",
                    core.create_namespaced_pod_eviction,
                    name,
                    namespace,
                    eviction,
                    ctx=ctx,
                )
        except KubeError as exc:
            return ActionResult(False, str(exc))
        finally:
            await cluster.aclose()
        return ActionResult(True, f"cordoned {cfg.node}; evicted {len(evicted)} pods", changes)


def _evictable(found: list[dict[str, Any]], node: str) -> list[tuple[str, str]]:
    """The pods on ``node`` a drain evicts: not DaemonSet pods, not mirror pods, not finished ones."""
    out = []
    for pod in found:
        meta, spec = pod.get("metadata") or {}, pod.get("spec") or {}
        if spec.get("nodeName") != node:
            continue
        if any(ref.get("kind") == "DaemonSet" for ref in meta.get("ownerReferences") or []):
            continue
        if MIRROR in (meta.get("annotations") or {}):
            continue
        if (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
            continue
        out.append((str(meta.get("namespace", "default")), str(meta["name"])))
    return sorted(out)


ACTION = ActionKind(
    name="cordon_and_drain",
    config=DrainConfig,
    build=CordonAndDrain,
    summary="node_pressure: cordon the node and evict its pods (not DaemonSet or mirror pods)",
)
