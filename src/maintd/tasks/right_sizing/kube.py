"""Plain JSON calls to the API server for the optimisation kinds, and Kubernetes quantities.

The kubernetes check's client (maintd.checks.kubernetes.api) signs the requests; the bodies are
read as JSON here, as the drift kind does, so metrics.k8s.io, quotas, claims and any policy
kind need no generated model.
"""

from __future__ import annotations

import json
import re
from decimal import Decimal, InvalidOperation
from typing import Any

import aiohttp

from maintd.checks.base import Status
from maintd.checks.kubernetes.api import ApiFailure, Cluster

_SUFFIX = {
    "n": Decimal("1e-9"), "u": Decimal("1e-6"), "m": Decimal("1e-3"), "": Decimal(1),
    "k": Decimal(10**3), "M": Decimal(10**6), "G": Decimal(10**9), "T": Decimal(10**12),
    "P": Decimal(10**15), "E": Decimal(10**18),
    "Ki": Decimal(2**10), "Mi": Decimal(2**20), "Gi": Decimal(2**30), "Ti": Decimal(2**40),
    "Pi": Decimal(2**50), "Ei": Decimal(2**60),
}  # fmt: skip
_QUANTITY = re.compile(r"^([+-]?[0-9.]+(?:[eE][+-]?[0-9]+)?)(n|u|m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$")


def quantity(text: Any) -> float:
    """A Kubernetes quantity (``250m``, ``23118455n``, ``512Mi``, ``1.5``) as a number of units
    (cores, bytes); ValueError when it is not one."""
    match = _QUANTITY.match(str(text).strip())
    if match is None:
        raise ValueError(f"not a Kubernetes quantity: {text!r}")
    try:
        return float(Decimal(match[1]) * _SUFFIX[match[2] or ""])
    except InvalidOperation:
        raise ValueError(f"not a Kubernetes quantity: {text!r}") from None


async def call(
    cluster: Cluster,
    method: str,
    path: str,
    timeout: float,
    *,
    body: Any = None,
    content_type: str = "application/json",
    query: list[tuple[str, str]] | None = None,
) -> tuple[int, Any]:
    """One request; the HTTP status and the JSON answer (None when it is not JSON). Raises
    ApiFailure (critical) when the server does not answer."""
    cluster.requests += 1
    headers = {"Accept": "application/json"}
    if body is not None:
        headers["Content-Type"] = content_type
    try:
        response: aiohttp.ClientResponse = await cluster.api.call_api(
            path,
            method,
            query_params=query or [],
            header_params=headers,
            body=body,
            auth_settings=["BearerToken"],
            _preload_content=False,
            _request_timeout=timeout,
        )
        try:
            raw = await response.read()
        finally:
            response.release()
    except TimeoutError:
        raise ApiFailure(Status.critical, f"the API server did not answer within {timeout:.1f} s") from None
    except aiohttp.ClientError as exc:
        raise ApiFailure(Status.critical, f"unreachable: {' '.join(str(exc).split())}") from None
    try:
        answer = json.loads(raw) if raw else None
    except ValueError:
        answer = None
    return response.status, answer


def refusal(method: str, path: str, code: int, answer: Any) -> ApiFailure:
    """A non-2xx answer as a failure naming the call and the API's Status message."""
    message = answer.get("message") if isinstance(answer, dict) else None
    reason = answer.get("reason") if isinstance(answer, dict) else None
    text = f"{method} {path}: ({code}{' ' + str(reason) if reason else ''})"
    text += f": {' '.join(str(message).split())}" if message else ""
    return ApiFailure(Status.critical if code >= 500 else Status.unknown, text, code)


async def items(
    cluster: Cluster, path: str, timeout: float, *, missing_ok: bool = False
) -> list[dict[str, Any]]:
    """The items of a list call; ``missing_ok``: a 404 (an API not installed, such as
    metrics-server) is an empty list."""
    code, answer = await call(cluster, "GET", path, timeout)
    if code == 404 and missing_ok:
        return []
    if not 200 <= code <= 299:
        raise refusal("GET", path, code, answer)
    found = answer.get("items") if isinstance(answer, dict) else None
    if not isinstance(found, list):
        raise ApiFailure(Status.unknown, f"GET {path}: the answer is not a list")
    return [item for item in found if isinstance(item, dict)]


def collection(prefix: str, plural: str, namespace: str | None) -> str:
    """``/api/v1/namespaces/production/pods``, or everywhere when ``namespace`` is None."""
    return f"{prefix}/namespaces/{namespace}/{plural}" if namespace else f"{prefix}/{plural}"
