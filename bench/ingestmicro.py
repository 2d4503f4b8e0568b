"""maintd's own CPU per alert request, in-process: the ASGI app called directly, no HTTP, no driver.

``python -m bench.ingestmicro [--route webhook] [--batch 1] [-n 3000] [--concurrency 16] [--silences 0]
[--profile FILE]``

The app (``create_app``, SQLite in a temporary directory, no engine) takes N distinct alerts in
bodies of BATCH, CONCURRENCY requests in flight as the HTTP benchmark's 16 connections keep
them, so requests share commits the same way. Printed: CPU per request for the whole process
(the event loop and the group-commit writer thread) and for the event loop alone. Run the
same command with ``PYTHONPATH=OTHER/src`` to compare two source trees without the noise of
a server, a driver and the network sharing two cores.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from bench.ingestchild import bodies


async def _drive(
    app: Any, path: str, payloads: list[bytes], headers: list[tuple[bytes, bytes]], width: int
) -> int:
    ok = 0
    queue = iter(payloads)

    async def one(body: bytes) -> int:
        sent = False

        async def receive() -> dict[str, Any]:
            nonlocal sent
            if sent:
                await asyncio.Event().wait()  # the client stays connected
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        status = 0

        async def send(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]

        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "POST",
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "root_path": "",
            "query_string": b"",
            "headers": [*headers, (b"content-length", str(len(body)).encode())],
            "client": ("127.0.0.1", 5000),
            "server": ("127.0.0.1", 8470),
            "state": {},
        }
        await app(scope, receive, send)
        return status

    async def worker() -> None:
        nonlocal ok
        for body in queue:
            if 200 <= await one(body) < 300:
                ok += 1

    await asyncio.gather(*(worker() for _ in range(width)))
    return ok


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.ingestmicro", description=__doc__)
    parser.add_argument("--route", choices=["native", "webhook"], default="webhook")
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("-n", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--profile", help="write a cProfile of the event loop's thread here")
    parser.add_argument(
        "--silences", type=int, default=0, help="active silences matching none of the alerts (default 0)"
    )
    args = parser.parse_args(argv)

    from maintd.alerts.integrations import IntegrationKind, create_integration
    from maintd.alerts.silences import create_silence
    from maintd.api.app import create_app
    from maintd.api.deps import AppContext
    from maintd.auth import Role, create_token
    from maintd.clock import SystemClock
    from maintd.metrics import Metrics
    from maintd.plan.incidents import Matcher
    from maintd.store.db import Store

    with tempfile.TemporaryDirectory(prefix="maintd-micro-") as tmp:
        store = Store(f"sqlite:///{Path(tmp) / 'micro.db'}")
        store.upgrade()
        clock = SystemClock()
        with store.write() as session:
            key = create_integration(
                session, name="am", kind=IntegrationKind.alertmanager, now=clock.now(), actor="bench"
            )
            token = create_token(session, name="bench", role=Role.responder, now=clock.now(), actor="bench")
            for i in range(args.silences):
                create_silence(
                    session,
                    matchers=[Matcher.parse(f"team=bench-{i}"), Matcher.parse("severity=~info|warning")],
                    starts_at=clock.now() - timedelta(minutes=1),
                    ends_at=clock.now() + timedelta(days=1),
                    created_by="bench",
                    comment="mutes nothing here: costs a look at each new alert",
                    now=clock.now(),
                )
        # No engine, so no settings: raise the rate limit as the HTTP benchmark does through the env.
        from maintd.api import ingest
        from maintd.api.ratelimit import RateLimiter

        ingest._limiter = lambda _settings: RateLimiter(1e6, 1_000_000)  # type: ignore[assignment]
        app = create_app(AppContext(store, clock, Metrics()))
        headers = [(b"content-type", b"application/json"), (b"host", b"127.0.0.1:8470")]
        if args.route == "native":
            path = "/api/v1/alerts"
            headers.append((b"authorization", f"Bearer {token}".encode()))
        else:
            path = f"/integrations/alertmanager/{key}"
        payloads = bodies(args.route, args.n, args.batch)
        # The first 50 bodies warm up imports, caches and query plans; the rest are measured.
        asyncio.run(_drive(app, path, payloads[:50], headers, args.concurrency))
        profiler = None
        if args.profile:
            import cProfile

            profiler = cProfile.Profile()
            profiler.enable()
        cpu, loop_cpu, wall = time.process_time(), time.thread_time(), time.perf_counter()
        ok = asyncio.run(_drive(app, path, payloads[50:], headers, args.concurrency))
        cpu, loop_cpu = time.process_time() - cpu, time.thread_time() - loop_cpu
        wall = time.perf_counter() - wall
        if profiler is not None:
            profiler.disable()
            profiler.dump_stats(args.profile)
        store.dispose()
    requests = len(payloads) - 50
    print(
        f"{args.route} batch {args.batch}: {ok}/{requests} requests 2xx in {wall:.2f} s;"
        f" CPU {cpu * 1e6 / requests:,.0f} µs/request ({loop_cpu * 1e6 / requests:,.0f} on the event loop),"
        f" {cpu * 1e6 / (requests * args.batch):,.0f} µs/alert"
    )


if __name__ == "__main__":
    main()
