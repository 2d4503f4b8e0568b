"""How to reach a cluster: the params every kind that talks to Kubernetes shares, and the rule
that turns them (over the target's connection) into connection settings."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from maintd.checks.base import RunContext, Status
from maintd.checks.kubernetes.api import ApiFailure, ConnectionSettings
from maintd.plan.base import StrictModel


class ClusterAccess(StrictModel):
    kubeconfig: str | None = Field(
        default=None,
        description="kubeconfig file; default: the target's connection.kubeconfig, else $KUBECONFIG "
        "or ~/.kube/config",
    )
    context: str | None = Field(
        default=None,
        description="kubeconfig context; default: the target's connection.context, else current-context",
    )
    in_cluster: bool = Field(default=False, description="use the service account of the pod maintd runs in")
    server: str | None = Field(
        default=None,
        pattern=r"^https?://\S+$",
        description="API server URL, authenticated with the token in token_secret "
        "(default: the target's connection.server)",
    )
    token_secret: str | None = Field(
        default="token",
        description="the target secret holding the bearer token, with server; null: no token",
    )
    ca_file: str | None = Field(
        default=None, description="CA bundle that signed the API server's certificate, with server"
    )
    insecure_skip_tls_verify: bool = Field(
        default=False, description="do not verify the API server's certificate, with server"
    )


def connection_settings(access: ClusterAccess, ctx: RunContext) -> ConnectionSettings:
    """The params when they name a way (in-cluster, server, kubeconfig), else the target's connection."""
    conn = ctx.target.connection
    if access.in_cluster or access.server or access.kubeconfig:
        in_cluster, server, kubeconfig = access.in_cluster, access.server, access.kubeconfig
    else:
        in_cluster = bool(conn.get("in_cluster"))
        server = _text(conn, "server")
        kubeconfig = _text(conn, "kubeconfig")
    if in_cluster:
        return ConnectionSettings("in_cluster")
    if server:
        token = None
        if access.token_secret is not None:
            try:
                token = ctx.secret(access.token_secret)
            except LookupError as exc:
                raise ApiFailure(Status.unknown, f"{server}: {exc}") from None
        return ConnectionSettings(
            "server",
            server=server,
            token=token,
            ca_file=access.ca_file or _text(conn, "ca_file"),
            insecure=access.insecure_skip_tls_verify or bool(conn.get("insecure_skip_tls_verify")),
        )
    return ConnectionSettings(
        "kubeconfig", kubeconfig=kubeconfig, context=access.context or _text(conn, "context")
    )


def _text(conn: dict[str, Any], key: str) -> str | None:
    value = conn.get(key)
    return value if isinstance(value, str) and value else None
