"""What is unused: files under allowed roots, claims no pod mounts, Released volumes; and the
removal list (a JSON file whose SHA-256 the change request carries)."""

from __future__ import annotations

import fnmatch
import hashlib
import json
import os
import stat
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from maintd.tasks.unused_resources import FileRule

LIST_VERSION = 1


@dataclass(frozen=True)
class Unused:
    kind: str  # file, PersistentVolumeClaim or PersistentVolume
    target: str  # the path, or namespace/name, or name
    why: str
    size: int = 0  # bytes (files), requested or capacity bytes (claims, volumes)
    mtime_ns: int = 0  # files: what the removal checks is unchanged
    api_path: str = ""  # objects: what the removal deletes
    uid: str = ""  # objects: the preconditions of the delete
    resource_version: str = ""

    def line(self) -> str:
        return f"{self.kind} {self.target}: {self.why}"


def old_files(rule: FileRule, now: datetime) -> tuple[list[Unused], list[str]]:
    """The regular files ``rule`` lists, and the problems met (a root missing or unreadable).
    Symbolic links are neither followed nor listed, so nothing outside the root is ever named."""
    root = Path(rule.root)
    problems: list[str] = []
    try:
        if not stat.S_ISDIR(os.lstat(root).st_mode):
            return [], [f"files root {root}: not a directory"]
    except FileNotFoundError:
        return [], [f"files root {root}: no such directory"]
    except OSError as exc:
        return [], [f"files root {root}: {(exc.strerror or str(exc)).lower()}"]
    by_dir: dict[Path, list[tuple[Path, os.stat_result]]] = {}
    stack = [root]
    while stack:
        folder = stack.pop()
        try:
            entries = list(os.scandir(folder))
        except OSError as exc:
            problems.append(f"{folder}: {(exc.strerror or str(exc)).lower()}")
            continue
        for entry in entries:
            if entry.is_dir(follow_symlinks=False):
                stack += [Path(entry.path)] if rule.recursive else []
            elif entry.is_file(follow_symlinks=False) and fnmatch.fnmatchcase(entry.name, rule.pattern):
                by_dir.setdefault(folder, []).append((Path(entry.path), entry.stat(follow_symlinks=False)))
    found: list[Unused] = []
    cutoff = (now - rule.older_than).timestamp()
    for folder in sorted(by_dir):
        newest_first = sorted(by_dir[folder], key=lambda f: (-f[1].st_mtime_ns, str(f[0])))
        for index, (path, st) in enumerate(newest_first):
            if index < rule.keep_newest or st.st_mtime >= cutoff:
                continue
            age = (now.timestamp() - st.st_mtime) / 86400
            why = f"modified {age:.1f} days ago (> {_days(rule.older_than)})"
            why += f", beyond the newest {rule.keep_newest} kept" if rule.keep_newest else ""
            found.append(Unused("file", str(path), why, st.st_size, st.st_mtime_ns))
    return found, problems


def mounted_claims(pods: list[dict[str, Any]]) -> set[tuple[str, str]]:
    """(namespace, claim) of every claim a pod that has not ended mounts."""
    out: set[tuple[str, str]] = set()
    for pod in pods:
        if (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
            continue
        namespace = str((pod.get("metadata") or {}).get("namespace"))
        for volume in (pod.get("spec") or {}).get("volumes") or []:
            claim = (volume.get("persistentVolumeClaim") or {}).get("claimName")
            if claim:
                out.add((namespace, str(claim)))
    return out


def stale_claims(
    claims: list[dict[str, Any]], mounted: set[tuple[str, str]], since: dict[str, str], now: datetime,
    after: timedelta,
) -> tuple[list[Unused], dict[str, str]]:  # fmt: skip
    """Claims unmounted since at least ``after`` ago (``since``: when earlier runs first saw each
    unmounted); the updated ``since`` (a claim mounted again is forgotten)."""
    found: list[Unused] = []
    seen: dict[str, str] = {}
    for claim in claims:
        meta = claim.get("metadata") or {}
        namespace, name = str(meta.get("namespace")), str(meta.get("name"))
        key = f"{namespace}/{name}"
        if (namespace, name) in mounted or meta.get("deletionTimestamp"):
            continue
        seen[key] = since.get(key) or now.isoformat()
        unmounted = now - datetime.fromisoformat(seen[key])
        if unmounted < after:
            continue
        size = (((claim.get("spec") or {}).get("resources") or {}).get("requests") or {}).get("storage", "0")
        why = f"no pod has mounted it for {_days(unmounted)} (since {seen[key]}), {size} requested"
        path = f"/api/v1/namespaces/{namespace}/persistentvolumeclaims/{name}"
        found.append(_object("PersistentVolumeClaim", key, why, size, path, meta))
    return found, seen


def released_volumes(
    volumes: list[dict[str, Any]], since: dict[str, str], now: datetime, after: timedelta
) -> tuple[list[Unused], dict[str, str]]:
    """Released volumes (their claim is gone, the data kept by a Retain policy) released at least
    ``after`` ago: by ``status.lastPhaseTransitionTime`` (Kubernetes 1.29+), else first seen here."""
    found: list[Unused] = []
    seen: dict[str, str] = {}
    for volume in volumes:
        meta, status = volume.get("metadata") or {}, volume.get("status") or {}
        if status.get("phase") != "Released":
            continue
        name = str(meta.get("name"))
        stamp = status.get("lastPhaseTransitionTime")
        seen[name] = since.get(name) or (stamp.replace("Z", "+00:00") if stamp else now.isoformat())
        released = now - datetime.fromisoformat(seen[name])
        if released < after:
            continue
        spec = volume.get("spec") or {}
        size = (spec.get("capacity") or {}).get("storage", "0")
        claim = spec.get("claimRef") or {}
        why = f"Released {_days(released)} ago (claim {claim.get('namespace')}/{claim.get('name')} gone)"
        why += f", {size}"
        why += f", reclaim policy {spec.get('persistentVolumeReclaimPolicy', '?')}"
        found.append(_object("PersistentVolume", name, why, size, f"/api/v1/persistentvolumes/{name}", meta))
    return found, seen


def unused_images(nodes: list[dict[str, Any]], pods: list[dict[str, Any]]) -> list[Unused]:
    """Images a node holds that no pod (not ended) on that node runs. Listed, never in a removal
    list: the API cannot delete images (the kubelet's image garbage collection, or ``crictl rmi``
    on the node, does)."""
    used: dict[str, set[str]] = {}
    for pod in pods:
        spec = pod.get("spec") or {}
        if (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed") or not spec.get("nodeName"):
            continue
        images = used.setdefault(str(spec["nodeName"]), set())
        for container in [*(spec.get("containers") or []), *(spec.get("initContainers") or [])]:
            images.add(str(container.get("image")))
    found: list[Unused] = []
    for node in nodes:
        name = str((node.get("metadata") or {}).get("name"))
        for image in (node.get("status") or {}).get("images") or []:
            names = [str(n) for n in image.get("names") or []]
            if not names or used.get(name, set()) & set(names):
                continue
            shown = next((n for n in names if "@sha256:" not in n), names[0])
            size = int(image.get("sizeBytes") or 0)
            why = f"no pod on {name} runs it; the kubelet's image GC or crictl rmi on the node removes it"
            found.append(Unused("image", f"{shown} on {name}", why, size))
    return found


def removal_list(items: list[Unused], cluster: dict[str, Any] | None, source: str) -> bytes:
    """The list as written: canonical JSON, so the same findings give the same digest."""
    body = {
        "version": LIST_VERSION,
        "source": source,
        "cluster": cluster,
        "items": [asdict(i) for i in items],
    }
    return json.dumps(body, sort_keys=True, indent=1).encode()


def write_list(directory: Path, data: bytes) -> tuple[Path, str]:
    """Written once per digest (a file of that name already holds these bytes)."""
    digest = hashlib.sha256(data).hexdigest()
    path = directory / f"unused-{digest[:16]}.json"
    if not path.exists():
        directory.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(".partial")
        partial.write_bytes(data)
        os.replace(partial, path)
    return path, digest


def _object(kind: str, target: str, why: str, size: Any, path: str, meta: dict[str, Any]) -> Unused:
    uid, version = str(meta.get("uid", "")), str(meta.get("resourceVersion", ""))
    return Unused(kind, target, why, _bytes(size), 0, path, uid, version)


def _days(span: timedelta) -> str:
    return f"{span.total_seconds() / 86400:.1f} days" if span.total_seconds() % 86400 else f"{span.days}d"


def _bytes(text: Any) -> int:
    from maintd.tasks.right_sizing.kube import quantity

    try:
        return int(quantity(text))
    except ValueError:
        return 0
