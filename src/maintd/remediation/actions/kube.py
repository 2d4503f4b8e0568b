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

from maintd.checks.kubernetes.access import ClusterAccess, connection_settings
from maintd.checks.kubernetes.api import ApiFailure, Cluster, ConnectionSettings, connect, list_all
from maintd.plan.models import Target, TargetKind
from maintd.remediation.base import ActionContext, Refused, one_line

NAME = r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$"


class ClusterParams(ClusterAccess):
    """The kubernetes check's ways to reach a cluster (kubeconfig, context, in-cluster, server and
    token), over the connection of the plan target ``cluster_target`` names."""

    cluster_target: str | None = Field(
        default=None,
        description="a plan target whose connection (kubeconfig, context, server, ca_file, ...) and "
        "secrets (the token) are the defaults",
    )


class KubeError(Exception):
    """A write call the API server refused or did not answer; the message says which and why."""


def settings(params: ClusterParams, ctx: ActionContext) -> ConnectionSettings:
    """``connection_settings`` of the kubernetes check, with ``cluster_target`` as the run's target."""
    target = Target(name="none", kind=TargetKind.cluster)
    if params.cluster_target is not None:
        try:
            target = ctx.plan_target(params.cluster_target)
        except KeyError:
            raise Refused(f"the plan has no target {params.cluster_target!r}") from None
    return connection_settings(params, _TargetOnly(target))  # type: ignore[arg-type]


class _TargetOnly:
    """The two things ``connection_settings`` reads of a run: its target's connection and secrets."""

    def __init__(self, target: Target) -> None:
        self.target = target

    def secret(self, name: str) -> str:
        try:
            return self.target.secrets[name].resolve()
        except KeyError:
            raise LookupError(f"target {self.target.name} has no secret named {name!r}") from None


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
