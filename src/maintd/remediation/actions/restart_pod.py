"""``restart_pod`` (pod_crash): delete the pod (its controller makes a new one), or restart its owner.

``mode: delete`` deletes the selected pods; ``mode: rollout`` does what ``kubectl rollout
restart`` does to each distinct owning Deployment, StatefulSet or DaemonSet: it sets the
``kubectl.kubernetes.io/restartedAt`` annotation of the pod template. Pods are selected by
name or by label selector inside one namespace; the pods (delete) or owners (rollout) count
towards the blast radius.
"""

from __future__ import annotations

from typing import Any, Literal, Self

from pydantic import Field, model_validator

from maintd.checks.base import Change
from maintd.remediation.actions.kube import NAME, ClusterParams, KubeError, call, open_cluster, owner_of, pods
from maintd.remediation.base import ActionContext, ActionKind, ActionResult, Refused, limit_blast

RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"
_PATCH = {
    "deployments": ("AppsV1Api", "patch_namespaced_deployment"),
    "statefulsets": ("AppsV1Api", "patch_namespaced_stateful_set"),
    "daemonsets": ("AppsV1Api", "patch_namespaced_daemon_set"),
}


class RestartPodConfig(ClusterParams):
    namespace: str = Field(description="the pod's namespace; ${label} is filled in")
    pod: str | None = Field(default=None, description="the pod's name (or use selector)")
    selector: str | None = Field(default=None, description="a label selector for the pods, e.g. app=${app}")
    mode: Literal["delete", "rollout"] = Field(
        default="delete", description="delete the pods, or rollout-restart their owners"
    )

    @model_validator(mode="after")
    def _one_way(self) -> Self:
        if (self.pod is None) == (self.selector is None):
            raise ValueError("name the pod, or give a selector (not both)")
        return self


class RestartPod:
    def __init__(self, config: RestartPodConfig) -> None:
        self.config = config

    async def execute(self, ctx: ActionContext) -> ActionResult:
        import re

        from kubernetes_asyncio import client

        cfg = self.config
        if not re.fullmatch(NAME, cfg.namespace):
            raise Refused(f"{cfg.namespace!r} is not a namespace name")
        selector = cfg.selector if cfg.selector is not None else f"name={cfg.pod}"
        if cfg.selector is not None and not cfg.selector.strip():
            raise Refused("the pod selector is empty; an empty selector never means all")
        try:
            cluster = await open_cluster(cfg, ctx)
        except KubeError as exc:
            return ActionResult(False, str(exc))
        try:
            found = await pods(cluster, cfg.namespace, cfg.selector, ctx)
            if cfg.pod is not None:
                found = [p for p in found if (p.get("metadata") or {}).get("name") == cfg.pod]
            names = [str(p["metadata"]["name"]) for p in found]
            if cfg.mode == "delete":
                limit_blast("pods", names, ctx.max_targets, selector=f"{cfg.namespace}/{selector}")
                return await _delete(cluster, client.CoreV1Api(cluster.api), cfg.namespace, names, ctx)
            owners = list(dict.fromkeys(o for o in (owner_of(p) for p in found) if o is not None))
            if found and not owners:
                raise Refused(f"pods {', '.join(names)} have no Deployment, StatefulSet or DaemonSet owner")
            shown = [f"{resource}/{name}" for resource, name in owners]
            limit_blast("workloads", shown, ctx.max_targets, selector=f"{cfg.namespace}/{selector}")
            return await _rollout(cluster, client, cfg.namespace, owners, ctx)
        except KubeError as exc:
            return ActionResult(False, str(exc))
        finally:
            await cluster.aclose()


async def _delete(
    cluster: Any, api: Any, namespace: str, names: list[str], ctx: ActionContext
) -> ActionResult:
    changes = [Change("delete_pod", f"{namespace}/{name}") for name in names]
    if ctx.dry_run:
        return ActionResult(True, f"dry run: would delete pods {', '.join(names)} in {namespace}", changes)
    for name in names:
        await call(
            cluster, f"deleting pod {namespace}/{name}", api.delete_namespaced_pod, name, namespace, ctx=ctx
        )
    return ActionResult(True, f"deleted pods {', '.join(names)} in {namespace}", changes)


async def _rollout(
    cluster: Any, client: Any, namespace: str, owners: list[tuple[str, str]], ctx: ActionContext
) -> ActionResult:
    stamp = ctx.clock.now().isoformat(timespec="seconds")
    body = {"spec": {"template": {"metadata": {"annotations": {RESTARTED_AT: stamp}}}}}
    changes = [Change("rollout_restart", f"{namespace}/{r}/{n}", {RESTARTED_AT: stamp}) for r, n in owners]
    shown = ", ".join(f"{r}/{n}" for r, n in owners)
    if ctx.dry_run:
        return ActionResult(True, f"dry run: would restart {shown} in {namespace}", changes)
    for resource, name in owners:
        group, method = _PATCH[resource]
        api = getattr(client, group)(cluster.api)
        await call(
            cluster, f"restarting {resource}/{name}", getattr(api, method), name, namespace, body, ctx=ctx
        )
    return ActionResult(True, f"restarted {shown} in {namespace}", changes)


ACTION = ActionKind(
    name="restart_pod",
    config=RestartPodConfig,
    build=RestartPod,
    summary="pod_crash: delete the pod, or rollout-restart its Deployment/StatefulSet/DaemonSet",
)
