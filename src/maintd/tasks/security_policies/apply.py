"""What an approved security-policies change runs: apply a bundle, or put back what it replaced.

``python -m maintd.tasks.security_policies.apply apply BUNDLE SHA256``: each desired object by
server-side apply (``PATCH ...?fieldManager=maintd&force=true``, ``application/apply-patch+yaml``),
in the bundle's order. ``... apply rollback BUNDLE SHA256``: in reverse order, each object that
existed before is put back as it was saved (``PUT``), and each the change created is deleted.
Both refuse a bundle whose digest is not the approved one (exit 2); exit 1 when a call failed.
Running either twice does no harm (an apply is idempotent; a delete of what is gone is done).
"""

from __future__ import annotations

import asyncio
import sys
from typing import Any

from maintd.checks.kubernetes.api import ApiFailure, ConnectionSettings, connect
from maintd.tasks.right_sizing.kube import call
from maintd.tasks.security_policies.bundle import read

TIMEOUT = 30.0
FIELD_MANAGER = "maintd"


async def _calls(body: dict[str, Any], steps: list[tuple[str, str, Any, str]]) -> int:
    """Run (method, path, body, content type) in order; print each outcome."""
    spec = body.get("cluster") or {}
    if spec.get("mode") == "server":
        print("FAILED: the bundle names an API server with a token; use a kubeconfig or in-cluster")
        return 1
    settings = ConnectionSettings(
        str(spec.get("mode")), kubeconfig=spec.get("kubeconfig"), context=spec.get("context")
    )
    try:
        cluster = await connect(settings)
    except ApiFailure as failure:
        print(f"FAILED: kubernetes: {failure.reason}")
        return 1
    failed = 0
    try:
        for method, path, payload, content_type in steps:
            query = [("fieldManager", FIELD_MANAGER), ("force", "true")] if method == "PATCH" else None
            try:
                code, answer = await call(
                    cluster, method, path, TIMEOUT, body=payload, content_type=content_type, query=query
                )
            except ApiFailure as failure:
                code, answer = 0, {"message": failure.reason}
            if 200 <= code <= 299 or (method == "DELETE" and code == 404):
                print(f"{method} {path}: done")
                continue
            failed += 1
            message = answer.get("message") if isinstance(answer, dict) else ""
            print(f"FAILED: {method} {path}: ({code}) {message}")
    finally:
        await cluster.aclose()
    return 1 if failed else 0


def plan_apply(body: dict[str, Any]) -> list[tuple[str, str, Any, str]]:
    return [("PATCH", e["path"], e["desired"], "application/apply-patch+yaml") for e in body["entries"]]


def plan_rollback(body: dict[str, Any]) -> list[tuple[str, str, Any, str]]:
    steps: list[tuple[str, str, Any, str]] = []
    for e in reversed(body["entries"]):
        if e["previous"] is None:
            steps.append(("DELETE", e["path"], None, "application/json"))
        else:
            steps.append(("PUT", e["path"], e["previous"], "application/json"))
    return steps


def main(argv: list[str]) -> int:
    if len(argv) != 3 or argv[0] not in ("apply", "rollback"):
        print(
            "usage: python -m maintd.tasks.security_policies.apply apply|rollback BUNDLE SHA256",
            file=sys.stderr,
        )
        return 2
    try:
        body = read(argv[1], argv[2])
    except ValueError as exc:
        print(exc, file=sys.stderr)
        return 2
    steps = plan_apply(body) if argv[0] == "apply" else plan_rollback(body)
    return asyncio.run(_calls(body, steps))


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
