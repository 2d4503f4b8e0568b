"""A change bundle: each policy object to apply and the live object it replaces (None: created).

Written as canonical JSON named by its digest; the change carries the path and the SHA-256, so
what is applied is exactly what was approved.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
from pathlib import Path
from typing import Any

from maintd.tasks.drift.manifests import Manifest

BUNDLE_VERSION = 1
# What a PUT of the saved object must not carry: the server's bookkeeping of that moment.
_VOLATILE = ("resourceVersion", "managedFields", "generation", "creationTimestamp", "selfLink")


def object_path(manifest: Manifest) -> str:
    return f"{manifest.list_path()}/{manifest.name}"


def entry(manifest: Manifest, live: dict[str, Any] | None) -> dict[str, Any]:
    return {
        "label": manifest.label,
        "path": object_path(manifest),
        "desired": manifest.doc,
        "previous": None if live is None else restorable(live, manifest),
    }


def restorable(live: dict[str, Any], manifest: Manifest) -> dict[str, Any]:
    """The live object as a PUT can restore it (list items lack kind and apiVersion)."""
    saved = copy.deepcopy(live)
    saved.pop("status", None)
    saved["apiVersion"], saved["kind"] = manifest.api_version, manifest.kind
    meta = saved.setdefault("metadata", {})
    for key in _VOLATILE:
        meta.pop(key, None)
    return saved


def encode(entries: list[dict[str, Any]], cluster: dict[str, Any], source: str) -> bytes:
    body = {"version": BUNDLE_VERSION, "source": source, "cluster": cluster, "entries": entries}
    return json.dumps(body, sort_keys=True, indent=1).encode()


def write(directory: Path, data: bytes) -> tuple[Path, str]:
    digest = hashlib.sha256(data).hexdigest()
    path = directory / f"policies-{digest[:16]}.json"
    if not path.exists():
        directory.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(".partial")
        partial.write_bytes(data)
        os.replace(partial, path)
    return path, digest


def read(path: str, digest: str) -> dict[str, Any]:
    """The bundle, when its digest is the approved one; ValueError otherwise (nothing applied)."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise ValueError(f"bundle {path}: {(exc.strerror or str(exc)).lower()}") from None
    actual = hashlib.sha256(data).hexdigest()
    if actual != digest:
        raise ValueError(f"bundle {path}: SHA-256 {actual} is not the approved {digest}; nothing applied")
    body = json.loads(data)
    if body.get("version") != BUNDLE_VERSION:
        raise ValueError(f"bundle {path}: version {body.get('version')!r} is not {BUNDLE_VERSION}")
    return dict(body)
