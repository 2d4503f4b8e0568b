"""Kubernetes manifests against the live objects: only the fields a manifest sets are compared.

A live object carries much the manifest never said: defaults the API server
filled in (``imagePullPolicy``, ``terminationMessagePath``...), metadata it
keeps (``uid``, ``resourceVersion``, ``managedFields``...) and ``status``.
So the live object is projected onto the manifest's shape (its keys; lists of
named things, such as containers, matched by name) and both are written as
YAML for the diff. Objects are read with a list call narrowed by
``fieldSelector=metadata.name=...`` (filtered by name here too), the same
requests the kubernetes check makes.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import yaml

from maintd.checks.base import Status
from maintd.checks.kubernetes.api import ApiFailure, Cluster
from maintd.tasks.drift.files import Broken, desired_path
from maintd.tasks.drift.items import Item, hash_diff, text_diff

# Kinds without a namespace; any other kind is namespaced.
CLUSTER_SCOPED = frozenset(
    {
        "Namespace", "Node", "PersistentVolume", "ClusterRole", "ClusterRoleBinding", "StorageClass",
        "CustomResourceDefinition", "PriorityClass", "IngressClass", "APIService", "RuntimeClass",
        "MutatingWebhookConfiguration", "ValidatingWebhookConfiguration", "CSIDriver", "VolumeAttachment",
    }
)  # fmt: skip
_IRREGULAR_PLURALS = {"Endpoints": "endpoints", "Ingress": "ingresses", "NetworkPolicy": "networkpolicies"}
# Written by the API server, never by whoever wrote the manifest (an exported object may carry them).
SERVER_METADATA = frozenset(
    {"uid", "resourceVersion", "generation", "creationTimestamp", "managedFields", "selfLink",
     "deletionTimestamp", "deletionGracePeriodSeconds", "ownerReferences"}
)  # fmt: skip


@dataclass(frozen=True)
class Manifest:
    source: str  # file#document, for the diff's label
    doc: dict[str, Any]
    api_version: str
    kind: str
    name: str
    namespace: str | None  # None: cluster scoped

    @property
    def label(self) -> str:
        where = f"{self.namespace}/{self.name}" if self.namespace else self.name
        return f"{self.kind} {where}"

    def list_path(self) -> str:
        group = "/api/v1" if self.api_version == "v1" else f"/apis/{self.api_version}"
        scope = f"/namespaces/{self.namespace}" if self.namespace else ""
        return f"{group}{scope}/{plural(self.kind)}"


def plural(kind: str) -> str:
    if kind in _IRREGULAR_PLURALS:
        return _IRREGULAR_PLURALS[kind]
    lower = kind.lower()
    if lower.endswith(("s", "x", "ch", "sh")):
        return lower + "es"
    if lower.endswith("y") and lower[-2:-1] not in "aeiou":
        return lower[:-1] + "ies"
    return lower + "s"


def load(desired: Path, paths: list[str], namespace: str) -> list[Manifest | Item]:
    """Every YAML document of ``paths`` (files, or directories of *.yaml / *.yml, sorted);
    an Item with an error for what cannot be read or is not an object."""
    found: list[Manifest | Item] = []
    for relative in paths:
        try:
            path = desired_path(desired, relative)
            files = (
                sorted(p for p in path.rglob("*") if p.suffix in (".yaml", ".yml"))
                if path.is_dir()
                else [path]
            )
        except Broken as exc:
            found.append(_broken(relative, str(exc)))
            continue
        for file in files:
            found += _documents(desired, file, namespace)
    return found


def _documents(desired: Path, file: Path, namespace: str) -> list[Manifest | Item]:
    shown = str(file.relative_to(desired.resolve())) if file.is_relative_to(desired.resolve()) else str(file)
    try:
        docs = list(yaml.safe_load_all(file.read_text()))
    except FileNotFoundError:
        return [_broken(shown, f"desired manifest {file}: no such file")]
    except OSError as exc:
        return [_broken(shown, f"desired manifest {file}: {(exc.strerror or str(exc)).lower()}")]
    except yaml.YAMLError as exc:
        return [_broken(shown, f"desired manifest {file}: not YAML: {' '.join(str(exc).split())}")]
    found: list[Manifest | Item] = []
    expanded: list[tuple[str, Any]] = []
    for index, doc in enumerate(docs):
        if isinstance(doc, dict) and doc.get("kind") == "List" and isinstance(doc.get("items"), list):
            expanded += [(f"{shown}#{index}.{i}", d) for i, d in enumerate(doc["items"])]
        elif doc is not None:
            expanded.append((f"{shown}#{index}", doc))
    for source, doc in expanded:
        meta = doc.get("metadata") if isinstance(doc, dict) else None
        if not isinstance(doc, dict) or not isinstance(meta, dict) or not meta.get("name"):
            found.append(_broken(source, "not an object with metadata.name"))
            continue
        if not isinstance(doc.get("apiVersion"), str) or not isinstance(doc.get("kind"), str):
            found.append(_broken(source, "no apiVersion or kind"))
            continue
        kind = doc["kind"]
        scope = None if kind in CLUSTER_SCOPED else str(meta.get("namespace") or namespace)
        found.append(Manifest(source, doc, doc["apiVersion"], kind, str(meta["name"]), scope))
    return found


def _broken(name: str, reason: str) -> Item:
    item = Item("manifest", name)
    item.failed(reason)
    return item


async def fetch(cluster: Cluster, manifest: Manifest, timeout: float) -> dict[str, Any] | None:
    """The live object, or None when the cluster has none of that name; ApiFailure otherwise."""
    cluster.requests += 1
    try:
        response: aiohttp.ClientResponse = await cluster.api.call_api(
            manifest.list_path(),
            "GET",
            query_params=[("fieldSelector", f"metadata.name={manifest.name}")],
            header_params={"Accept": "application/json"},
            auth_settings=["BearerToken"],
            _preload_content=False,
            _request_timeout=timeout,
        )
        try:
            body = await response.read()
        finally:
            response.release()
    except TimeoutError:
        raise ApiFailure(Status.critical, f"the API server did not answer within {timeout:.1f} s") from None
    except aiohttp.ClientError as exc:
        raise ApiFailure(Status.critical, f"unreachable: {' '.join(str(exc).split())}") from None
    if response.status == 404:
        # No such resource type here (a CRD not installed, a wrong apiVersion): nothing of that name.
        return None
    if not 200 <= response.status <= 299:
        raise ApiFailure(
            Status.unknown, _refusal(response.status, response.reason or "", body), response.status
        )
    try:
        page = json.loads(body)
    except ValueError as exc:
        raise ApiFailure(Status.unknown, f"the answer is not JSON: {exc}") from None
    items = page.get("items") if isinstance(page, dict) else None
    if not isinstance(items, list):
        raise ApiFailure(Status.unknown, f"the answer is not a {manifest.kind} list")
    for obj in items:
        if isinstance(obj, dict) and (obj.get("metadata") or {}).get("name") == manifest.name:
            return obj
    return None


def _refusal(code: int, reason: str, body: bytes) -> str:
    message = ""
    try:
        answer = json.loads(body)
        if isinstance(answer, dict):
            message, reason = str(answer.get("message") or ""), str(answer.get("reason") or reason)
    except ValueError:
        message = body[:200].decode("utf-8", "replace")
    return f"({code} {reason})" + (f": {' '.join(message.split())}" if message else "")


def compare(manifest: Manifest, live: dict[str, Any] | None, sensitive: bool) -> Item:
    item = Item("manifest", manifest.label)
    want = desired_fields(manifest.doc)
    label, actual_label = f"desired/{manifest.source}", f"live {manifest.label}"
    if live is None:
        item.drifted("missing in the cluster")
        item.diff = _diff(want, None, label, actual_label, sensitive)
        return item
    got = project(want, live)
    if got != want:
        item.drifted("fields differ")
        item.diff = _diff(want, got, label, actual_label, sensitive)
    return item


def desired_fields(doc: dict[str, Any]) -> dict[str, Any]:
    """The manifest without what only the server writes (status, server metadata), and without
    apiVersion and kind: they chose the object (list items carry neither)."""
    out = {k: v for k, v in doc.items() if k not in ("status", "apiVersion", "kind")}
    if isinstance(out.get("metadata"), dict):
        out["metadata"] = {k: v for k, v in out["metadata"].items() if k not in SERVER_METADATA}
    return out


def project(want: Any, live: Any) -> Any:
    """``live`` cut down to the shape of ``want``: dict keys ``want`` has; list items matched by name
    when ``want``'s are named (extra live items kept as their name only), else by position."""
    if isinstance(want, dict) and isinstance(live, dict):
        return {k: project(v, live[k]) for k, v in want.items() if k in live}
    if isinstance(want, list) and isinstance(live, list):
        if want and all(isinstance(w, dict) and "name" in w for w in want):
            by_name = {x.get("name"): x for x in live if isinstance(x, dict)}
            out = [project(w, by_name[w["name"]]) for w in want if w["name"] in by_name]
            named = {w["name"] for w in want}
            return out + [
                {"name": x.get("name")} for x in live if isinstance(x, dict) and x.get("name") not in named
            ]
        return [project(w, x) for w, x in zip(want, live, strict=False)] + live[len(want) :]
    return live


def _diff(want: Any, got: Any, label: str, actual_label: str, sensitive: bool) -> list[str]:
    if sensitive:
        digest = hashlib.sha256(json.dumps(want, sort_keys=True).encode()).hexdigest()
        actual = None if got is None else hashlib.sha256(json.dumps(got, sort_keys=True).encode()).hexdigest()
        return hash_diff(digest, actual, label, actual_label)
    return text_diff(_yaml(want), "" if got is None else _yaml(got), label, actual_label)


def _yaml(value: Any) -> str:
    return yaml.safe_dump(value, sort_keys=True, default_flow_style=False, allow_unicode=True)
