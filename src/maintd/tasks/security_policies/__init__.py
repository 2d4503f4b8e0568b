"""``security-policies``: a directory of Kubernetes manifests (NetworkPolicies, PodSecurity labels
on namespaces, RBAC...) against the cluster, each difference shown as drift shows it, and ONE
change request that applies them (server-side apply) with the objects as they were saved as its
rollback. kubernetes_asyncio is imported only when a run starts (``run.py``)."""

from __future__ import annotations

from datetime import timedelta

from pydantic import Field

from maintd.checks.base import Kind, lazy
from maintd.checks.kubernetes.access import ClusterAccess
from maintd.plan.base import StrictModel
from maintd.plan.types import Duration
from maintd.tasks.change_drafts import ChangeDraftSettings

__all__ = ["KIND", "SecurityPoliciesConfig"]


class SecurityPoliciesConfig(StrictModel):
    directory: str = Field(description="the directory of policy manifests (*.yaml, *.yml; subfolders too)")
    kubernetes: ClusterAccess = Field(
        default=ClusterAccess(), description="how to reach the cluster, as the kubernetes check"
    )
    namespace: str = Field(default="default", description="for manifests that name no namespace")
    bundles_dir: str = Field(
        description="where the change bundles (desired objects and the live ones they replace) are written"
    )
    change: ChangeDraftSettings | None = Field(
        default=None, description="the change request to draft; null: report the differences only"
    )
    max_diff_lines: int = Field(default=60, ge=1, le=10_000, description="most diff lines shown per object")
    timeout: Duration = Field(
        default=timedelta(seconds=20), description="each API call is given up after this"
    )


KIND = Kind(
    name="security-policies",
    config=SecurityPoliciesConfig,
    build=lazy("maintd.tasks.security_policies.run"),
    summary="security policies from a directory of manifests vs the cluster; applied by change with rollback",
    changes=lambda config: config.change is not None,
)
