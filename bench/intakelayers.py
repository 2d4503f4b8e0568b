"""Where ``maintd intake``'s CPU per request goes, layer by layer, over real HTTP at batch 1.

``python -m bench.intakelayers [--store sqlite|postgresql] [-n 10000] [--rounds 3]``

The same driver as ``bench.ingest`` (16 keep-alive connections, single-alert native bodies)
sends N alerts to a server built of more and more of the intake, each in its own process:

- ``http``: maintd.intake.http answering every request with a fixed 202 (the HTTP floor);
- ``validate``: + the body parsed and validated (``admission.read``), the count answered;
- ``routes``: the intake's own routes (token, rate limit, checks), the journal answering at once;
- ``journal``: + the group-commit journal and its writer thread over a database that stores
  nothing;
- ``intake``: the whole intake on a new database of ``--store``.

Printed per layer: the median of the rounds (interleaved) of accepted alerts/s and the
server's CPU per request, and what the layer adds to the one before it. A layer's CPU is
what it costs on top of everything below it, with the driver sharing the two cores.
"""

from __future__ import annotations

import sys

if "--serve" in sys.argv:  # the server, as ``maintd intake`` runs: no ssl, no OpenSSL hashes
    for _module in ("ssl", "_hashlib"):
        sys.modules.setdefault(_module, None)  # type: ignore[arg-type]

import argparse
import asyncio
import signal
import statistics
import subprocess
from typing import Any

LAYERS = ("http", "validate", "routes", "journal", "intake")


class _NoDatabase:
    """Stores nothing and answers ids in order: the journal's own cost, without a database."""

    def __init__(self) -> None:
        self.last = 0

    def insert(self, rows: Any) -> list[int]:
        first, self.last = self.last + 1, self.last + len(rows)
        return list(range(first, self.last + 1))

    def close(self) -> None:
        pass


async def _serve(layer: str, port: int, url: str) -> None:
    from maintd.alerts import admission
    from maintd.alerts.formats.native import NativeAlerts
    from maintd.intake.app import JSON, QUEUED
    from maintd.intake.http import Request, Response, Server
    from maintd.intake.process import build
    from maintd.settings import Settings

    async def fixed(request: Request) -> Response:
        count = len(admission.read(NativeAlerts, request.body).root) if layer == "validate" else 1
        return Response(202, QUEUED % (count, 1), JSON)

    app = build(Settings.from_env(database_url=url))
    app.limiter.rate, app.limiter.burst = 1e9, 10**9  # as the ingest benchmark raises it

    async def at_once(row: Any) -> int:
        return 1

    if layer == "routes":
        app.journal.store = at_once  # type: ignore[method-assign]
    elif layer == "journal":
        app.journal._database = _NoDatabase()  # type: ignore[assignment]
    app.journal.start()
    server = Server(fixed if layer in ("http", "validate") else app.handle)
    await server.start("127.0.0.1", port)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    print("ready", flush=True)
    await stop.wait()
    await server.stop()
    await app.journal.stop()


def _sample(layer: str, store_kind: str, n: int) -> dict[str, Any]:
    from bench import ingest
    from bench.common import open_store, scratch_store
    from bench.services import free_port
    from maintd.auth import Role, create_token
    from maintd.clock import SystemClock

    with scratch_store(store_kind) as url:
        store = open_store(url)
        try:
            with store.write() as session:
                now = SystemClock().now()
                token = create_token(session, name="bench", role=Role.responder, now=now, actor="bench")
        finally:
            store.dispose()
        port = free_port()
        cmd = [sys.executable, "-m", "bench.intakelayers", "--serve", layer, str(port), url]
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE)
        try:
            assert proc.stdout is not None and proc.stdout.readline() == b"ready\n", f"{layer} did not start"
            return ingest._drive("native", f"http://127.0.0.1:{port}/api/v1/alerts", n, 1, proc.pid, token)
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=30)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.intakelayers", description=__doc__)
    parser.add_argument("--store", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("-n", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--serve", nargs=3, metavar=("LAYER", "PORT", "URL"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        layer, port, url = args.serve
        asyncio.run(_serve(layer, int(port), url))
        return
    samples: dict[str, list[dict[str, Any]]] = {layer: [] for layer in LAYERS}
    for _ in range(args.rounds):
        for layer in LAYERS:
            s = _sample(layer, args.store, args.n)
            samples[layer].append(s)
            cpu = s["server_cpu_s"] * 1e6 / args.n
            print(f"{layer}: {s['rate']:,.0f} alerts/s, server CPU {cpu:,.0f} µs/request", flush=True)
    print(f"-- batch 1, {args.store}, {args.n} alerts, {args.rounds} rounds, medians")
    print(f"{'layer':10} {'alerts/s':>10} {'µs/request':>11} {'added':>7}")
    below = 0.0
    for layer in LAYERS:
        rate = statistics.median(s["rate"] for s in samples[layer])
        cpu = statistics.median(s["server_cpu_s"] for s in samples[layer]) * 1e6 / args.n
        print(f"{layer:10} {rate:>10,.0f} {cpu:>11,.0f} {cpu - below:>+7,.0f}")
        below = cpu


if __name__ == "__main__":
    main()
