"""The receiver and driver of the latency benchmark; prints one JSON line. Not for direct use.

``python -m bench.latencychild SYSTEM URL RECEIVER_PORT N RATE SERVER_PID [AUTH]``

Starts a webhook receiver (aiohttp) on 127.0.0.1:RECEIVER_PORT that stamps each POST
as it arrives (``/maintd``: apprise's ``json://`` body, the incident id in its title;
``/alertmanager``: Alertmanager's webhook, the ``bench_id`` label of its alerts), then
sends N distinct alerts, one a request, at RATE a second on a fixed schedule (open loop:
a slow answer does not delay the next send). SYSTEM is ``maintd`` (``POST
/api/v1/alerts``, AUTH the bearer token; the answer names the incident) or
``alertmanager`` (``POST /api/v2/alerts``). Receiver and driver share one process and
one clock (``time.perf_counter``); wall-clock stamps (``time.time``) go along so the
benchmark can place the server's own stored times between them.
"""

from __future__ import annotations

import asyncio
import json
import re
import sys
import time
from typing import Any

from bench.services import cpu_seconds

GRACE = 10.0  # seconds to wait after the last answer for pages still on their way
_INCIDENT = re.compile(r"#(\d+)\b")


class Receiver:
    """Arrivals by key: the incident id (maintd) or the alert's ``bench_id`` (Alertmanager)."""

    def __init__(self) -> None:
        self.first: dict[str, tuple[float, float]] = {}  # key -> (perf_counter, time.time) of its first page
        self.pages = 0

    async def maintd(self, request: Any) -> Any:
        stamp = (time.perf_counter(), time.time())
        body = await request.json()
        found = _INCIDENT.search(str(body.get("title", "")))
        self._arrived([found[1]] if found else [], stamp)
        return _ok()

    async def alertmanager(self, request: Any) -> Any:
        stamp = (time.perf_counter(), time.time())
        body = await request.json()
        self._arrived([str(a["labels"].get("bench_id")) for a in body.get("alerts", [])], stamp)
        return _ok()

    def _arrived(self, keys: list[str], stamp: tuple[float, float]) -> None:
        self.pages += 1
        for key in keys:
            self.first.setdefault(key, stamp)


def _ok() -> Any:
    from aiohttp import web

    return web.Response(text="ok")


def alert(system: str, i: int) -> dict[str, Any]:
    labels = {"alertname": "LatencyBench", "target": f"lat{i:05d}", "bench_id": str(i), "job": "bench"}
    annotations = {"summary": f"latency bench alert {i}"}
    if system == "maintd":
        return {"labels": labels, "annotations": annotations, "severity": "critical"}
    return {"labels": labels, "annotations": annotations}


async def drive(system: str, url: str, port: int, n: int, rate: float, pid: int, auth: str) -> dict[str, Any]:
    import aiohttp
    from aiohttp import web

    receiver = Receiver()
    app = web.Application()
    app.router.add_post("/maintd", receiver.maintd)
    app.router.add_post("/alertmanager", receiver.alertmanager)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()

    bodies = [json.dumps([alert(system, i)]).encode() for i in range(n)]
    headers = {"Content-Type": "application/json"}
    if auth:
        headers["Authorization"] = f"Bearer {auth}"
    sends: list[dict[str, Any]] = []
    errors: list[str] = []
    connector = aiohttp.TCPConnector(limit=64)
    async with aiohttp.ClientSession(connector=connector, headers=headers) as session:

        async def send(i: int) -> None:
            sent = time.perf_counter()
            async with session.post(url, data=bodies[i]) as response:
                accepted, accepted_wall = time.perf_counter(), time.time()
                text = await response.read()
            if not 200 <= response.status < 300:
                if len(errors) < 3:
                    errors.append(f"{response.status}: {text[:300]!r}")
                return
            key = str(json.loads(text)["alerts"][0]["incident_id"]) if system == "maintd" else str(i)
            sends.append(
                {"i": i, "key": key, "sent": sent, "accepted": accepted, "accepted_wall": accepted_wall}
            )

        server_cpu = cpu_seconds(pid)
        started = time.perf_counter()
        tasks = []
        for i in range(n):
            await asyncio.sleep(max(0.0, started + i / rate - time.perf_counter()))
            tasks.append(asyncio.create_task(send(i)))
        await asyncio.gather(*tasks)
        wall = time.perf_counter() - started
        deadline = time.monotonic() + GRACE
        while len(receiver.first) < len(sends) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        server_cpu = cpu_seconds(pid) - server_cpu
    await runner.cleanup()
    for s in sends:
        arrived = receiver.first.get(s["key"])
        s["latency_ms"] = None if arrived is None else (arrived[0] - s["accepted"]) * 1000
        s["arrived_wall"] = None if arrived is None else arrived[1]
        s["post_ms"] = (s["accepted"] - s["sent"]) * 1000
    return {
        "system": system,
        "alerts": n,
        "accepted": len(sends),
        "errors": errors,
        "send_wall_s": wall,
        "pages": receiver.pages,
        "server_cpu_s": server_cpu,
        "sends": [
            {k: s[k] for k in ("i", "key", "latency_ms", "post_ms", "accepted_wall", "arrived_wall")}
            for s in sends
        ],
    }


def main(argv: list[str]) -> None:
    system, url, port, n, rate, pid = argv[:6]
    auth = argv[6] if len(argv) > 6 else ""
    found = asyncio.run(drive(system, url, int(port), int(n), float(rate), int(pid), auth))
    print(json.dumps(found))


if __name__ == "__main__":
    main(sys.argv[1:])
