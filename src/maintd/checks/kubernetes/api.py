"""Talking to the API server with kubernetes_asyncio: connecting, and paged lists as plain JSON.

kubernetes_asyncio is imported lazily (it costs ~0.3 s, which every maintd
start-up would otherwise pay). The client builds the requests, loads kubeconfig
and in-cluster credentials and signs the requests; responses are read as plain
JSON (``_preload_content=False``) rather than as generated models: the models
reject objects a newer or older API server writes slightly differently (client
side validation of required fields), and building them for thousands of pods
blocks the event loop for seconds.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from maintd.checks.base import Status

if TYPE_CHECKING:
    from kubernetes_asyncio.client import ApiClient

# Where a pod finds its service account; a module attribute so tests can point it elsewhere.
SERVICE_ACCOUNT = Path("/var/run/secrets/kubernetes.io/serviceaccount")

USER_AGENT = "maintd (kubernetes check)"

# The resource kinds this check reads: (API group class, namespaced list, all-namespaces list).
_LISTS: dict[str, tuple[str, str | None, str]] = {
    "pods": ("CoreV1Api", "list_namespaced_pod", "list_pod_for_all_namespaces"),
    "deployments": ("AppsV1Api", "list_namespaced_deployment", "list_deployment_for_all_namespaces"),
    "statefulsets": ("AppsV1Api", "list_namespaced_stateful_set", "list_stateful_set_for_all_namespaces"),
    "daemonsets": ("AppsV1Api", "list_namespaced_daemon_set", "list_daemon_set_for_all_namespaces"),
    "nodes": ("CoreV1Api", None, "list_node"),
}

_PARSE_IN_THREAD = 1 << 20  # bytes: bigger list bodies are parsed off the event loop


class ApiFailure(Exception):
    """A request that did not give a list: the result status it means and why, in one line."""

    def __init__(self, status: Status, reason: str, code: int | None = None) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.code = code  # the HTTP status, when the server answered


@dataclass
class ConnectionSettings:
    """Where the API server is and how to authenticate, resolved from params and the target."""

    mode: str  # "kubeconfig", "in_cluster" or "server"
    kubeconfig: str | None = None
    context: str | None = None
    server: str | None = None
    token: str | None = None
    ca_file: str | None = None
    insecure: bool = False


@dataclass
class Cluster:
    """An open client for one run; ``where`` names the cluster in the output."""

    api: ApiClient
    where: str
    requests: int = 0
    _apis: dict[str, Any] = field(default_factory=dict)

    async def aclose(self) -> None:
        await self.api.close()


async def connect(settings: ConnectionSettings) -> Cluster:
    """A fresh client for ``settings``; raises ApiFailure (unknown) when the configuration is unusable."""
    from kubernetes_asyncio import client, config

    configuration = client.Configuration()
    where_suffix = ""
    if settings.mode == "in_cluster":
        try:
            config.load_incluster_config(  # type: ignore[no-untyped-call]
                client_configuration=configuration,
                token_filename=str(SERVICE_ACCOUNT / "token"),
                cert_filename=str(SERVICE_ACCOUNT / "ca.crt"),
            )
        except Exception as exc:  # ConfigException, OSError: the pod has no usable service account
            raise ApiFailure(Status.unknown, f"in-cluster config: {_text(exc)}") from None
        where_suffix = " (in-cluster)"
    elif settings.mode == "server":
        assert settings.server is not None
        configuration.host = settings.server.rstrip("/")
        if settings.token is not None:
            configuration.api_key["BearerToken"] = settings.token
            configuration.api_key_prefix["BearerToken"] = "Bearer"
        if settings.ca_file:
            if not os.path.isfile(settings.ca_file):
                raise ApiFailure(Status.unknown, f"ca_file {settings.ca_file}: no such file")
            configuration.ssl_ca_cert = settings.ca_file
        configuration.verify_ssl = not settings.insecure
    else:
        paths = settings.kubeconfig or os.environ.get("KUBECONFIG") or "~/.kube/config"
        if not any(os.path.isfile(os.path.expanduser(p)) for p in paths.split(os.pathsep) if p):
            raise ApiFailure(Status.unknown, f"kubeconfig {paths}: no such file")
        try:
            loader = await config.load_kube_config(
                config_file=paths,
                context=settings.context,
                client_configuration=configuration,
                persist_config=False,  # never rewrite the operator's kubeconfig
            )
        except Exception as exc:  # ConfigException, yaml errors, OSError, a failing exec plugin
            raise ApiFailure(Status.unknown, f"kubeconfig {paths}: {_text(exc)}") from None
        context = (loader.current_context or {}).get("name")
        where_suffix = f" (context {context})" if context else ""
    try:
        api = client.ApiClient(configuration)
    except (OSError, ValueError) as exc:  # an unreadable CA bundle or client certificate
        raise ApiFailure(Status.unknown, f"TLS setup: {_text(exc)}") from None
    api.user_agent = USER_AGENT
    return Cluster(api, f"{configuration.host}{where_suffix}")


async def list_all(
    cluster: Cluster,
    resource: str,
    namespace: str | None,
    *,
    label_selector: str | None,
    chunk_size: int,
    timeout: Callable[[], float],
) -> list[dict[str, Any]]:
    """Every object of ``resource`` (in ``namespace``, or everywhere), following ``continue`` pages.

    A continue token that expired (410) restarts the list once, as kubectl does.
    Raises ApiFailure for anything but a list.
    """
    restarted = False
    items: list[dict[str, Any]] = []
    token: str | None = None
    while True:
        try:
            page = await _list_page(
                cluster, resource, namespace, label_selector, chunk_size, token, timeout()
            )
        except ApiFailure as failure:
            if token is not None and failure.code == 410:
                if restarted:
                    raise
                restarted, items, token = True, [], None
                continue
            raise
        items.extend(item for item in page.get("items") or [] if isinstance(item, dict))
        token = (page.get("metadata") or {}).get("continue") or None
        if token is None:
            return items


async def _list_page(
    cluster: Cluster,
    resource: str,
    namespace: str | None,
    label_selector: str | None,
    limit: int,
    token: str | None,
    timeout: float,
) -> dict[str, Any]:
    from kubernetes_asyncio import client

    group, namespaced, everywhere = _LISTS[resource]
    if group not in cluster._apis:
        cluster._apis[group] = getattr(client, group)(cluster.api)
    api = cluster._apis[group]
    kwargs: dict[str, Any] = {
        "limit": limit,
        "_request_timeout": timeout,
        "_preload_content": False,
    }
    if label_selector:
        kwargs["label_selector"] = label_selector
    if token:
        kwargs["_continue"] = token
    args: tuple[str, ...] = ()
    if namespace is not None and namespaced is not None:
        call, args = getattr(api, namespaced), (namespace,)
    else:
        call = getattr(api, everywhere)
    import aiohttp  # here, not at the top: kubernetes_asyncio brings it only to processes that use it

    cluster.requests += 1
    try:
        response: aiohttp.ClientResponse = await call(*args, **kwargs)
        try:
            body = await response.read()
        finally:
            response.release()
    except TimeoutError:
        raise ApiFailure(Status.critical, f"the API server did not answer within {timeout:.1f} s") from None
    except aiohttp.ClientSSLError as exc:
        raise ApiFailure(Status.critical, f"TLS: {_text(exc)}") from None
    except aiohttp.ClientConnectionError as exc:
        raise ApiFailure(Status.critical, f"unreachable: {_text(exc)}") from None
    except aiohttp.ClientError as exc:
        raise ApiFailure(Status.critical, f"request failed: {_text(exc)}") from None
    if not 200 <= response.status <= 299:
        raise _failure(response.status, response.reason or "", body)
    try:
        if len(body) > _PARSE_IN_THREAD:
            page = await asyncio.to_thread(json.loads, body)
        else:
            page = json.loads(body)
    except ValueError as exc:
        raise ApiFailure(Status.unknown, f"the answer is not JSON: {exc}") from None
    if not isinstance(page, dict) or not isinstance(page.get("items", []), list | None):
        raise ApiFailure(Status.unknown, f"the answer is not a {resource} list")
    return page


def _failure(code: int, reason: str, body: bytes) -> ApiFailure:
    """An HTTP error as a result line, with the message of the API's Status object when there is one."""
    message = ""
    try:
        status = json.loads(body)
        if isinstance(status, dict):
            message = str(status.get("message") or "")
            reason = str(status.get("reason") or reason)
    except ValueError:
        message = body[:200].decode("utf-8", "replace")
    head = f"({code} {reason})"
    detail = f": {_one_line(message)}" if message else ""
    if code == 401:
        return ApiFailure(Status.unknown, f"authentication failed {head}{detail}", code)
    if code == 403:
        return ApiFailure(Status.unknown, f"forbidden {head}{detail}", code)
    if code == 429 or code >= 500:
        return ApiFailure(Status.critical, f"API server error {head}{detail}", code)
    return ApiFailure(Status.unknown, f"request refused {head}{detail}", code)


def _text(exc: BaseException) -> str:
    return _one_line(str(exc) or type(exc).__name__)


def _one_line(text: str, limit: int = 300) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"
