"""A fake Kubernetes API server on 127.0.0.1 for the kubernetes kind's tests, and recorded objects.

``objects/<scenario>/<resource>.json`` are list responses written by hand after
the API reference (PodList, DeploymentList, StatefulSetList, DaemonSetList,
NodeList; items as the API returns them, without their own kind/apiVersion).
``healthy`` is a whole small cluster (3 nodes; production, staging,
kube-system, monitoring); every other scenario lists only the objects that
differ from it, and ``cluster("crashloop")`` overlays them by namespace/name.
The recorded times are relative to tests.conftest.T0 (2026-11-27 01:00 UTC),
the FakeClock's start.

The server answers the list calls the kind makes, as the real one does:
``labelSelector`` (equality and set based), ``limit``/``continue`` paging,
``Authorization: Bearer`` checked (401 Status otherwise), 403 and 404 as
Status objects, and it records every request it saw.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import yaml
from aiohttp import web

from tests.kubernetes_support import more
from tests.servers import http_server

OBJECTS = Path(__file__).parent / "objects"
RESOURCES = ("pods", "deployments", "statefulsets", "daemonsets", "nodes")
_LIST_KIND = {
    "pods": ("PodList", "v1", ""),
    "nodes": ("NodeList", "v1", ""),
    "deployments": ("DeploymentList", "apps/v1", "apps"),
    "statefulsets": ("StatefulSetList", "apps/v1", "apps"),
    "daemonsets": ("DaemonSetList", "apps/v1", "apps"),
}
_ROUTE = re.compile(
    r"^/(?:api/v1|apis/apps/v1)(?:/namespaces/(?P<namespace>[a-z0-9-]+))?/(?P<resource>[a-z]+)$"
)
_GROUP_OF = {"pods": "/api/v1", "nodes": "/api/v1"}
SERVICE_ACCOUNT_USER = "system:serviceaccount:monitoring:maintd"


def load(scenario: str) -> dict[str, list[dict[str, Any]]]:
    """The objects of one scenario folder, by resource (missing files: no objects)."""
    found: dict[str, list[dict[str, Any]]] = {}
    for resource in RESOURCES:
        path = OBJECTS / scenario / f"{resource}.json"
        if path.exists():
            found[resource] = json.loads(path.read_text())["items"]
    return found


def cluster(*scenarios: str) -> dict[str, list[dict[str, Any]]]:
    """The healthy cluster with each scenario's objects put in place of the same namespace/name."""
    objects = {resource: list(items) for resource, items in load("healthy").items()}
    for scenario in scenarios:
        for resource, items in load(scenario).items():
            current = {_key(o): o for o in objects.get(resource, [])}
            current.update({_key(o): o for o in items})
            objects[resource] = list(current.values())
    return objects


def _key(obj: dict[str, Any]) -> tuple[str, str]:
    meta = obj["metadata"]
    return (meta.get("namespace", ""), meta["name"])


@dataclass
class Seen:
    """One request the fake server answered."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any = None  # the JSON of a write call (remediation's DELETE, PATCH, POST)

    @property
    def target(self) -> str:
        """``GET /api/v1/pods?labelSelector=...``: the method, path and query as sent."""
        return f"{self.method} {self.path}" + (f"?{urlencode(self.query)}" if self.query else "")


@dataclass
class FakeKubeApi:
    """The fake API server's behaviour; ``serve()`` runs it on loopback."""

    objects: dict[str, list[dict[str, Any]]] = field(default_factory=lambda: cluster())
    token: str | None = "maintd-test-token"
    forbidden: set[str] = field(default_factory=set)  # resources the token may not list
    expire_continue: int = 0  # how many continue tokens to reject with 410 Expired
    release: asyncio.Event | None = None  # when given: hold answers until it is set
    hang: set[str] = field(default_factory=set)  # ... only for these resources (empty: all)
    requests: list[Seen] = field(default_factory=list)
    resource_version: int = 48300000
    refuse_evictions: set[str] = field(default_factory=set)  # "namespace/pod" a PDB protects (429)
    # optimisation kinds: more collections by (API prefix, plural), see tests.kubernetes_support.more
    more: dict[tuple[str, str], list[dict[str, Any]]] = field(default_factory=dict)

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        return app

    @asynccontextmanager
    async def serve(self, tls: tuple[Path, Path] | None = None) -> AsyncIterator[str]:
        """Serve on 127.0.0.1 (a free port); yields the base URL."""
        async with http_server(self.app(), tls) as base:
            yield base

    def seen(self) -> list[str]:
        return [r.target for r in self.requests]

    def writes(self) -> list[tuple[str, Any]]:
        """The write calls seen, in order: (``METHOD path``, JSON body)."""
        return [(f"{r.method} {r.path}", r.body) for r in self.requests if r.method != "GET"]

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.json() if request.can_read_body else None
        seen = Seen(request.method, request.path, dict(request.query), dict(request.headers), body)
        self.requests.append(seen)
        if self.release is not None and (not self.hang or request.path.rsplit("/", 1)[-1] in self.hang):
            await self.release.wait()
        if self.token is not None and request.headers.get("Authorization") != f"Bearer {self.token}":
            return _status(401, "Unauthorized", "Unauthorized")
        if (answer := more.handle(self, request.method, request.path, body)) is not None:  # optimisation
            return answer
        if (
            request.method != "GET"
            and (answer := write(self, request.method, request.path, body)) is not None
        ):
            return answer
        match = _ROUTE.match(request.path)
        if (
            match is None
            or match["resource"] not in _LIST_KIND
            or not request.path.startswith(_GROUP_OF.get(match["resource"], "/apis/apps/v1"))
        ):
            return _status(404, "NotFound", "the server could not find the requested resource")
        resource, namespace = match["resource"], match["namespace"]
        if resource == "nodes" and namespace is not None:
            return _status(404, "NotFound", "the server could not find the requested resource")
        if request.method != "GET":
            return _status(405, "MethodNotAllowed", f"the server does not allow this method on {resource}")
        if request.query.get("watch", "").lower() in ("true", "1"):
            return _status(400, "BadRequest", "this fake API server does not serve watches")
        kind, api_version, group = _LIST_KIND[resource]
        if resource in self.forbidden:
            where = f'in the namespace "{namespace}"' if namespace else "at the cluster scope"
            return _status(
                403,
                "Forbidden",
                f'{resource} is forbidden: User "{SERVICE_ACCOUNT_USER}" cannot list resource '
                f'"{resource}" in API group "{group}" {where}',
                details={"kind": resource, **({"group": group} if group else {})},
            )
        try:
            selector = _parse_selector(request.query.get("labelSelector", ""))
        except ValueError as exc:
            return _status(400, "BadRequest", f"unable to parse requirement: {exc}")
        items = [
            obj
            for obj in sorted(self.objects.get(resource, []), key=_key)
            if (namespace is None or obj["metadata"].get("namespace") == namespace)
            and _matches(selector, obj["metadata"].get("labels") or {})
        ]
        offset = 0
        if "continue" in request.query:
            if self.expire_continue > 0:
                self.expire_continue -= 1
                return _status(
                    410,
                    "Expired",
                    "The provided continue parameter is too old to display a consistent list result. "
                    "You can start a new list without the continue parameter, or use the continue token "
                    "in this response to retrieve the remainder of the results.",
                )
            try:
                offset = json.loads(base64.b64decode(request.query["continue"]))["start"]
            except (ValueError, KeyError, TypeError):
                return _status(400, "BadRequest", "continue key is not valid: incorrect encoded start")
        limit = int(request.query.get("limit", "0") or 0)
        page = items[offset : offset + limit] if limit else items[offset:]
        meta: dict[str, Any] = {"resourceVersion": str(self.resource_version)}
        if limit and offset + limit < len(items):
            token = json.dumps({"v": "meta.k8s.io/v1", "rv": self.resource_version, "start": offset + limit})
            meta["continue"] = base64.b64encode(token.encode()).decode()
            meta["remainingItemCount"] = len(items) - offset - limit
        return web.json_response({"kind": kind, "apiVersion": api_version, "metadata": meta, "items": page})


# -- the write calls remediation makes (maintd.remediation.actions) ---------------------------------

_OBJECT = re.compile(
    r"^/(?:api/v1|apis/apps/v1)(?:/namespaces/(?P<namespace>[a-z0-9-]+))?/(?P<resource>[a-z]+)/(?P<name>[a-z0-9.-]+)"
    r"(?P<sub>/eviction)?$"
)


def write(fake: FakeKubeApi, method: str, path: str, body: Any) -> web.Response | None:
    """DELETE a pod, PATCH a workload's pod template or a node's spec, POST a pod's eviction; the
    objects change as on a real server (a deleted or evicted pod is gone). None: not a write route."""
    match = _OBJECT.match(path)
    if match is None:
        return None
    resource, namespace, name = match["resource"], match["namespace"] or "", match["name"]
    found = next((o for o in fake.objects.get(resource, []) if _key(o) == (namespace, name)), None)
    if found is None:
        return _status(404, "NotFound", f'{resource} "{name}" not found')
    if method == "DELETE" and resource == "pods" and not match["sub"]:
        fake.objects["pods"].remove(found)
        return web.json_response({"kind": "Pod", "apiVersion": "v1", **found})
    if method == "POST" and resource == "pods" and match["sub"]:
        if f"{namespace}/{name}" in fake.refuse_evictions:
            return _status(
                429, "TooManyRequests", "Cannot evict pod as it would violate the pod's disruption budget."
            )
        fake.objects["pods"].remove(found)
        return web.json_response({"kind": "Status", "apiVersion": "v1", "status": "Success"}, status=201)
    if method == "PATCH" and not match["sub"] and isinstance(body, dict):
        _merge(found, body)
        return web.json_response(found)
    return _status(405, "MethodNotAllowed", f"the fake does not allow {method} on {resource}")


def _merge(into: dict[str, Any], patch: dict[str, Any]) -> None:
    for key, value in patch.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            _merge(into[key], value)
        else:
            into[key] = value


def _status(code: int, reason: str, message: str, details: dict[str, Any] | None = None) -> web.Response:
    body: dict[str, Any] = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }
    if details:
        body["details"] = details
    return web.json_response(body, status=code)


_REQUIREMENT = re.compile(
    r"^\s*(?:(?P<not>!)\s*(?P<absent>[\w./-]+)"
    r"|(?P<key>[\w./-]+)\s*(?:(?P<op>==|=|!=)\s*(?P<value>[\w.-]*)"
    r"|\s+(?P<setop>in|notin)\s*\((?P<values>[^)]*)\))?)\s*$"
)


Requirement = tuple[str, str, frozenset[str]]  # (key, operator, values)


def _parse_selector(text: str) -> list[Requirement]:
    """A label selector as the API server reads it: requirements joined by commas, all must hold."""
    requirements: list[Requirement] = []
    for part in re.split(r",(?![^(]*\))", text) if text.strip() else []:
        m = _REQUIREMENT.match(part)
        if m is None:
            raise ValueError(f"{part!r}")
        if m["not"]:
            requirements.append((m["absent"], "!", frozenset()))
        elif m["op"]:
            requirements.append((m["key"], "!=" if m["op"] == "!=" else "=", frozenset({m["value"]})))
        elif m["setop"]:
            values = frozenset(v.strip() for v in m["values"].split(","))
            requirements.append((m["key"], m["setop"], values))
        else:
            requirements.append((m["key"], "exists", frozenset()))
    return requirements


def _matches(requirements: list[Requirement], labels: dict[str, str]) -> bool:
    for key, op, values in requirements:
        value = labels.get(key)
        held = {
            "!": key not in labels,
            "exists": key in labels,
            "=": value in values,
            "in": value in values,
            "!=": value not in values,
            "notin": value not in values,
        }[op]
        if not held:
            return False
    return True


def write_kubeconfig(
    directory: Path,
    server: str,
    token: str = "maintd-test-token",
    *,
    extra_contexts: dict[str, str] | None = None,
    ca_file: Path | None = None,
) -> Path:
    """A kubeconfig with context ``fake`` (current) using ``token``; ``extra_contexts`` name -> token."""
    contexts = {"fake": token, **(extra_contexts or {})}
    cluster_entry: dict[str, Any] = {"server": server}
    if ca_file is not None:
        cluster_entry["certificate-authority"] = str(ca_file)
    document = {
        "apiVersion": "v1",
        "kind": "Config",
        "preferences": {},
        "clusters": [{"name": "fake-cluster", "cluster": cluster_entry}],
        "users": [{"name": f"{name}-user", "user": {"token": value}} for name, value in contexts.items()],
        "contexts": [
            {
                "name": name,
                "context": {"cluster": "fake-cluster", "user": f"{name}-user", "namespace": "default"},
            }
            for name in contexts
        ],
        "current-context": "fake",
    }
    path = directory / "kubeconfig.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path
