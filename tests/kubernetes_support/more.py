"""More of the API for the optimisation kinds: any group/version/resource by path, read and written.

``FakeKubeApi.more`` holds objects of the resources the core fake does not serve
(PersistentVolumeClaims, PersistentVolumes, ResourceQuotas, metrics.k8s.io
PodMetrics, NetworkPolicies, Namespaces...), keyed by their collection's API prefix
and plural (``("/api/v1", "persistentvolumeclaims")``). Answered as a real server
does: lists (namespaced or everywhere), GET / PUT / PATCH (JSON merge patch) /
DELETE of one object, POST to create one (409 when it exists), server-side apply (PATCH with
``application/apply-patch+yaml``: creates a missing object); 404 Status otherwise.
``objects/optimisation/*.json`` are recorded list responses written after the API
reference, times relative to tests.conftest.T0.
"""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aiohttp import web

if TYPE_CHECKING:
    from tests.kubernetes_support import FakeKubeApi

RECORDED = Path(__file__).parent / "objects" / "optimisation"
Collection = tuple[str, str]  # (API prefix, plural)

_PATH = re.compile(
    r"^(?P<prefix>/api/v1|/apis/[a-z0-9.-]+/v[0-9a-z]+)"
    r"(?:/namespaces/(?P<namespace>[a-z0-9-]+))?/(?P<plural>[a-z]+)(?:/(?P<name>[a-z0-9.-]+))?$"
)
_LIST_KINDS = {
    "persistentvolumeclaims": "PersistentVolumeClaimList",
    "persistentvolumes": "PersistentVolumeList",
    "resourcequotas": "ResourceQuotaList",
    "networkpolicies": "NetworkPolicyList",
    "namespaces": "NamespaceList",
}
# PodMetrics are namespaced "pods" under metrics.k8s.io; Namespace objects are cluster scoped.
_CLUSTER_SCOPED = {"persistentvolumes", "namespaces", "nodes"}


def recorded() -> dict[Collection, list[dict[str, Any]]]:
    """The recorded optimisation objects: metrics, claims, volumes, quotas, policies, namespaces."""
    files = {
        ("/apis/metrics.k8s.io/v1beta1", "pods"): "podmetrics.json",
        ("/api/v1", "persistentvolumeclaims"): "persistentvolumeclaims.json",
        ("/api/v1", "persistentvolumes"): "persistentvolumes.json",
        ("/api/v1", "resourcequotas"): "resourcequotas.json",
        ("/apis/networking.k8s.io/v1", "networkpolicies"): "networkpolicies.json",
        ("/api/v1", "namespaces"): "namespaces.json",
    }
    return {key: json.loads((RECORDED / name).read_text())["items"] for key, name in files.items()}


def handle(fake: FakeKubeApi, method: str, path: str, body: Any) -> web.Response | None:
    """The answer for a path under ``fake.more``; None: not one of those collections."""
    match = _PATH.match(path)
    if match is None or (match["prefix"], match["plural"]) not in fake.more:
        return None
    items = fake.more[(match["prefix"], match["plural"])]
    namespace, name, plural = match["namespace"], match["name"], match["plural"]
    if name is None:
        if method == "GET":
            found = [o for o in items if namespace is None or o["metadata"].get("namespace") == namespace]
            kind = _LIST_KINDS.get(plural, "PodMetricsList")
            return web.json_response({"kind": kind, "apiVersion": "v1", "metadata": {}, "items": found})
        if method == "POST" and isinstance(body, dict):
            if _find(items, namespace, body["metadata"]["name"]) is not None:
                return _status(409, "AlreadyExists", f'{plural} "{body["metadata"]["name"]}" already exists')
            created = copy.deepcopy(body)
            if namespace and plural not in _CLUSTER_SCOPED:
                created["metadata"]["namespace"] = namespace
            items.append(created)
            return web.json_response(created, status=201)
        return _status(405, "MethodNotAllowed", f"{method} is not allowed on a list")
    found = _find(items, namespace, name)
    applying = fake.requests[-1].headers.get("Content-Type", "").startswith("application/apply-patch")
    if method == "PATCH" and applying and found is None and isinstance(body, dict):
        # Server-side apply creates what is missing (the fake merges; a real server tracks field owners).
        created = copy.deepcopy(body)
        if namespace and plural not in _CLUSTER_SCOPED:
            created["metadata"]["namespace"] = namespace
        items.append(created)
        return web.json_response(created, status=201)
    if found is None:
        return _status(404, "NotFound", f'{plural} "{name}" not found')
    if method == "GET":
        return web.json_response(found)
    if method == "DELETE":
        items.remove(found)
        return web.json_response({"kind": "Status", "apiVersion": "v1", "status": "Success"})
    if method == "PUT" and isinstance(body, dict):
        items[items.index(found)] = copy.deepcopy(body)
        return web.json_response(body)
    if method == "PATCH" and isinstance(body, dict):
        _merge_patch(found, body)
        return web.json_response(found)
    return _status(405, "MethodNotAllowed", f"{method} is not allowed here")


def _find(items: list[dict[str, Any]], namespace: str | None, name: str) -> dict[str, Any] | None:
    for obj in items:
        meta = obj["metadata"]
        if meta["name"] == name and (namespace is None or meta.get("namespace") == namespace):
            return obj
    return None


def _merge_patch(into: dict[str, Any], patch: dict[str, Any]) -> None:
    """RFC 7386: null removes a key, objects merge, anything else replaces."""
    for key, value in patch.items():
        if value is None:
            into.pop(key, None)
        elif isinstance(value, dict) and isinstance(into.get(key), dict):
            _merge_patch(into[key], value)
        else:
            into[key] = copy.deepcopy(value)


def _status(code: int, reason: str, message: str) -> web.Response:
    body = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": message, "reason": reason, "code": code}  # fmt: skip
    return web.json_response(body, status=code)
