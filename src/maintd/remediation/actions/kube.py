"""What the Kubernetes actions share: how to reach the cluster, and one write call as plain JSON.

Connecting is the kubernetes check's (``maintd.checks.kubernetes.api.connect``); a cluster is
named by a kubeconfig (and context) or by a plan target whose connection has ``server`` and
whose secret ``token`` holds the bearer token.
"""

from __future__ import annotations

import json
from typing import Any

import aiohttp
from pydantic import Field

from maintd.checks.kubernetes.api import ApiFailure, Cluster, ConnectionSettings, connect, list_all
from maintd.plan.base import StrictModel
from maintd.remediation.base import ActionContext, Refused, one_line

NAME = r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$"


class ClusterParams(StrictModel):
    kubeconfig: str | None = Field(default=None, description="kubeconfig file of the cluster")
    context: str | None = Field(default=None, description="kubeconfig context; default: current-context")
    cluster_target: str | None = Field(
        default=None,
        description="instead of kubeconfig: a plan target with connection.server (and ca_file) "
        "and the secret token",
    )


class KubeError(Exception):
    """A write call the API server refused or did not answer; the message says which and why."""


def settings(params: ClusterParams, ctx: ActionContext) -> ConnectionSettings:
    if params.cluster_target is None:
        return ConnectionSettings("kubeconfig", kubeconfig=params.kubeconfig, context=params.context)
    try:
        target = ctx.plan_target(params.cluster_target)
    except KeyError:
        raise Refused(f"the plan has no target {params.cluster_target!r}") from None
    server = target.connection.get("server")
    if not isinstance(server, str):
        raise Refused(f"target {target.name} has no connection.server")
    token = target.secrets["token"].resolve() if "token" in target.secrets else None
    ca = target.connection.get("ca_file")
    return ConnectionSettings(
        "server", server=server, token=token, ca_file=ca if isinstance(ca, str) else None
    )


async def open_cluster(params: ClusterParams, ctx: ActionContext) -> Cluster:
    try:
        return await connect(settings(params, ctx))
    except ApiFailure as failure:
        raise KubeError(f"kubernetes: {failure.reason}") from None


async def pods(
    cluster: Cluster, namespace: str | None, selector: str | None, ctx: ActionContext
) -> list[dict[str, Any]]:
    try:
        return await list_all(
            cluster, "pods", namespace, label_selector=selector, chunk_size=500, timeout=ctx.seconds_left
        )
    except ApiFailure as failure:
        raise KubeError(f"kubernetes {cluster.where}: listing pods: {failure.reason}") from None


async def call(
    cluster: Cluster, what: str, method: Any, *args: Any, ctx: ActionContext, **kwargs: Any
) -> dict[str, Any]:
    """One generated-client call, answered as JSON; KubeError unless the answer is 2xx."""
    cluster.requests += 1
    try:
        response: aiohttp.ClientResponse = await method(
            *args, _preload_content=False, _request_timeout=max(0.1, ctx.seconds_left()), **kwargs
        )
        try:
            body = await response.read()
        finally:
            response.release()
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise KubeError(
            f"kubernetes {cluster.where}: {what}: {one_line(exc) or type(exc).__name__}"
        ) from None
    try:
        answer = json.loads(body) if body else {}
    except ValueError:
        answer = {"message": body[:200].decode("utf-8", "replace")}
    if not 200 <= response.status <= 299:
        message = answer.get("message", "") if isinstance(answer, dict) else ""
        raise KubeError(f"kubernetes {cluster.where}: {what}: HTTP {response.status} {message}".strip())
    return answer if isinstance(answer, dict) else {}


def owner_of(pod: dict[str, Any]) -> tuple[str, str] | None:
    """The workload that owns a pod: (resource, name) of its Deployment, StatefulSet or DaemonSet.

    A Deployment's pods belong to a ReplicaSet named ``<deployment>-<pod-template-hash>``.
    """
    meta = pod.get("metadata") or {}
    for ref in meta.get("ownerReferences") or []:
        kind, name = ref.get("kind"), str(ref.get("name", ""))
        if kind == "ReplicaSet":
            suffix = "-" + str((meta.get("labels") or {}).get("pod-template-hash", ""))
            if suffix != "-" and name.endswith(suffix):
                return ("deployments", name.removesuffix(suffix))
            return None
        if kind == "StatefulSet":
            return ("statefulsets", name)
        if kind == "DaemonSet":
            return ("daemonsets", name)
    return None
