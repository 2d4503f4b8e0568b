"""The removal an approved unused-resources change runs: exactly the listed files and objects.

``python -m maintd.tasks.unused_resources.remove apply LIST SHA256`` (a plan procedure's ``apply``,
with ``{list}`` and ``{sha256}`` from the change) removes what the list names, and nothing that
changed since it was listed: the list must still have the digest the change was approved with; a
file is removed only while it is the same regular file (size and modification time); an object
is deleted with its uid and resourceVersion as preconditions (the API server refuses otherwise).
What is gone already counts as removed, so running it twice does no harm. Exit status 0: all
removed (or gone, or changed and kept); 1: something could not be removed; 2: a bad list.

``... remove undo LIST`` is the rollback: deletions cannot be undone, so it says so and exits 1
(the change becomes failed, and people are told).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import stat
import sys
from pathlib import Path
from typing import Any

from maintd.checks.kubernetes.api import ApiFailure, ConnectionSettings, connect
from maintd.tasks.right_sizing.kube import call
from maintd.tasks.unused_resources.listing import LIST_VERSION

TIMEOUT = 30.0


class BadList(Exception):
    pass


def read_list(path: str, digest: str) -> dict[str, Any]:
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise BadList(f"removal list {path}: {(exc.strerror or str(exc)).lower()}") from None
    actual = hashlib.sha256(data).hexdigest()
    if actual != digest:
        raise BadList(f"removal list {path}: SHA-256 {actual} is not the approved {digest}; nothing removed")
    body = json.loads(data)
    if body.get("version") != LIST_VERSION:
        raise BadList(f"removal list {path}: version {body.get('version')!r} is not {LIST_VERSION}")
    return dict(body)


def remove_file(item: dict[str, Any]) -> tuple[bool, str]:
    """(ok, what happened) for one listed file."""
    path = item["target"]
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return True, f"gone already: {path}"
    except OSError as exc:
        return False, f"cannot look at {path}: {(exc.strerror or str(exc)).lower()}"
    if not stat.S_ISREG(st.st_mode) or st.st_size != item["size"] or st.st_mtime_ns != item["mtime_ns"]:
        return True, f"kept, changed since listed: {path}"
    try:
        os.unlink(path)
    except FileNotFoundError:
        return True, f"gone already: {path}"
    except OSError as exc:
        return False, f"cannot remove {path}: {(exc.strerror or str(exc)).lower()}"
    return True, f"removed {path} ({item['size']} bytes)"


async def remove_objects(
    cluster_spec: dict[str, Any], objects: list[dict[str, Any]]
) -> list[tuple[bool, str]]:
    if cluster_spec.get("mode") == "server":
        return [(False, "the list names an API server with a token; list with a kubeconfig or in-cluster")]
    settings = ConnectionSettings(
        str(cluster_spec.get("mode")),
        kubeconfig=cluster_spec.get("kubeconfig"),
        context=cluster_spec.get("context"),
    )
    try:
        cluster = await connect(settings)
    except ApiFailure as failure:
        return [(False, f"kubernetes: {failure.reason}")]
    out: list[tuple[bool, str]] = []
    try:
        for item in objects:
            options = {
                "kind": "DeleteOptions",
                "apiVersion": "v1",
                "preconditions": {"uid": item["uid"], "resourceVersion": item["resource_version"]},
            }
            label = f"{item['kind']} {item['target']}"
            try:
                code, answer = await call(cluster, "DELETE", item["api_path"], TIMEOUT, body=options)
            except ApiFailure as failure:
                out.append((False, f"cannot delete {label}: {failure.reason}"))
                continue
            if 200 <= code <= 299:
                out.append((True, f"deleted {label}"))
            elif code == 404:
                out.append((True, f"gone already: {label}"))
            elif code == 409:
                out.append((True, f"kept, changed since listed: {label}"))
            else:
                message = answer.get("message") if isinstance(answer, dict) else ""
                out.append((False, f"cannot delete {label}: ({code}) {message}"))
    finally:
        await cluster.aclose()
    return out


def apply(path: str, digest: str) -> int:
    try:
        body = read_list(path, digest)
    except (BadList, ValueError) as exc:
        print(exc, file=sys.stderr)
        return 2
    results = [remove_file(i) for i in body["items"] if i["kind"] == "file"]
    objects = [i for i in body["items"] if i["kind"] != "file"]
    if objects:
        results += asyncio.run(remove_objects(body.get("cluster") or {}, objects))
    for ok, text in results:
        print(text if ok else f"FAILED: {text}")
    return 0 if all(ok for ok, _ in results) else 1


def main(argv: list[str]) -> int:
    if len(argv) == 3 and argv[0] == "apply":
        return apply(argv[1], argv[2])
    if len(argv) == 2 and argv[0] == "undo":
        print(f"removals cannot be undone: what {argv[1]} lists is gone (files unlinked, objects deleted)")
        return 1
    print(
        "usage: python -m maintd.tasks.unused_resources.remove apply LIST SHA256 | undo LIST", file=sys.stderr
    )
    return 2


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
