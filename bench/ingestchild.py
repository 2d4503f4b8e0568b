"""The load driver of the ingest benchmark; prints one JSON line. Not for direct use.

``python -m bench.ingestchild ROUTE URL N BATCH CONNECTIONS SERVER_PID [AUTH]``

ROUTE is ``alertmanager`` (Alertmanager's ``POST /api/v2/alerts``: a JSON list of
alerts), ``native`` (maintd's ``POST /api/v1/alerts``, AUTH is the bearer token)
or ``webhook`` (maintd's ``/integrations/alertmanager/KEY``: URL holds the key, a
version 4 webhook body). N distinct alerts (distinct label sets) go in bodies of
BATCH alerts, over CONNECTIONS keep-alive connections, each connection sending its
next body as soon as the last one is answered. Every body is built before the clock
starts. Measured: wall time, accepted alerts (2xx), latency per request, the
driver's own CPU, and the server's CPU (``/proc/PID/stat``) and RSS afterwards.

Several servers (API replicas): URL and SERVER_PID may each be a comma-separated list. The
connections are spread over the URLs round robin; the server CPU and RSS are the sums over
the PIDs (each PID's own CPU is in ``server_cpu_by_pid``).
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from datetime import UTC, datetime
from typing import Any

from bench.probechild import own_cpu
from bench.services import cpu_seconds

TIME_LIMIT = 600.0  # seconds: give up (and fail) rather than run on
ALERTNAMES = 20  # alerts share names and targets as real ones do: incidents group them
TARGETS = 500


def labels_of(i: int) -> dict[str, str]:
    return {
        "alertname": f"BenchAlert{i % ALERTNAMES:02d}",
        "target": f"host{i % TARGETS:03d}",
        "instance": f"host{i % TARGETS:03d}:{9100 + i // TARGETS}",
        "job": "bench",
        "severity": "warning",
    }


def alert_of(route: str, i: int, starts_at: str) -> dict[str, Any]:
    labels = labels_of(i)
    annotations = {"summary": f"{labels['alertname']} on {labels['instance']}"}
    if route == "native":
        return {"labels": labels, "annotations": annotations, "severity": "warning"}
    alert: dict[str, Any] = {
        "labels": labels,
        "annotations": annotations,
        "startsAt": starts_at,
        "generatorURL": "http://prometheus:9090/graph?g0.expr=up",
    }
    if route == "webhook":
        from maintd.alerts.fingerprint import fingerprint

        alert.update(status="firing", endsAt="0001-01-01T00:00:00Z", fingerprint=fingerprint(labels))
    return alert


def bodies(route: str, n: int, batch: int) -> list[bytes]:
    starts_at = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    out = []
    for first in range(0, n, batch):
        alerts = [alert_of(route, i, starts_at) for i in range(first, min(n, first + batch))]
        if route == "webhook":
            document: Any = {
                "version": "4",
                "groupKey": f'{{}}:{{batch="{first}"}}',
                "truncatedAlerts": 0,
                "status": "firing",
                "receiver": "maintd",
                "groupLabels": {"job": "bench"},
                "commonLabels": {"job": "bench"},
                "commonAnnotations": {},
                "externalURL": "http://alertmanager:9093",
                "alerts": alerts,
            }
        else:
            document = alerts
        out.append(json.dumps(document).encode())
    return out


def server_rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


async def drive(
    route: str, urls: list[str], n: int, batch: int, connections: int, pids: list[int], auth: str
) -> dict[str, Any]:
    import aiohttp

    payloads = bodies(route, n, batch)
    sizes = [min(batch, n - first) for first in range(0, n, batch)]
    headers = {"Content-Type": "application/json"}
    if auth:
        headers["Authorization"] = f"Bearer {auth}"
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    accepted = 0
    errors: list[str] = []
    queue = iter(range(len(payloads)))
    deadline = time.monotonic() + TIME_LIMIT
    connector = aiohttp.TCPConnector(limit=connections, force_close=False)
    async with aiohttp.ClientSession(connector=connector, headers=headers) as session:

        async def worker(url: str) -> None:
            nonlocal accepted
            for index in queue:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"over {TIME_LIMIT:g} s")
                sent = time.perf_counter()
                async with session.post(url, data=payloads[index]) as response:
                    text = await response.read()
                latencies.append(time.perf_counter() - sent)
                statuses[response.status] = statuses.get(response.status, 0) + 1
                if 200 <= response.status < 300:
                    accepted += sizes[index]
                elif len(errors) < 3:
                    errors.append(f"{response.status}: {text[:300]!r}")

        server_cpu = [cpu_seconds(pid) for pid in pids]
        cpu = own_cpu()
        started = time.perf_counter()
        await asyncio.gather(*(worker(urls[c % len(urls)]) for c in range(connections)))
        wall = time.perf_counter() - started
        cpu = own_cpu() - cpu
        server_cpu = [cpu_seconds(pid) - before for pid, before in zip(pids, server_cpu, strict=True)]
    latencies.sort()
    return {
        "route": route,
        "alerts": n,
        "batch": batch,
        "connections": connections,
        "accepted": accepted,
        "statuses": {str(k): v for k, v in statuses.items()},
        "errors": errors,
        "wall_s": wall,
        "rate": accepted / wall,
        "p50_ms": latencies[len(latencies) // 2] * 1000,
        "p99_ms": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000,
        "driver_cpu_s": cpu,
        "server_cpu_s": sum(server_cpu),
        "server_cpu_by_pid": server_cpu,
        "server_rss_mb": sum(server_rss_mb(pid) for pid in pids),
        "server_rss_by_pid": [server_rss_mb(pid) for pid in pids],
    }


def main(argv: list[str]) -> None:
    route, urls, n, batch, connections, pids = argv[:6]
    auth = argv[6] if len(argv) > 6 else ""
    found = asyncio.run(
        drive(
            route,
            urls.split(","),
            int(n),
            int(batch),
            int(connections),
            [int(p) for p in pids.split(",")],
            auth,
        )
    )
    print(json.dumps(found))


if __name__ == "__main__":
    main(sys.argv[1:])
