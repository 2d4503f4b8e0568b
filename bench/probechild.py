"""The child processes of the http-probe benchmark; each prints one JSON line. Not for direct use.

``maintd DB_URL URL N CONCURRENCY MODE``: a plan of one ``http`` task on N targets,
  all due at once, run by the engine's own loop (``Engine.start()``) on DB_URL.
``aiohttp URL N CONCURRENCY MODE``: the same N GETs with aiohttp alone, no engine
``client URL N CONCURRENCY MODE``: the same N GETs with the http kind's own client, no engine
  (the floor under maintd: a session set up as ``Resources.http()``).
``blackbox EXPORTER_URL URL N CONCURRENCY``: the driver that asks blackbox_exporter
  for N probes of URL (``/probe?module=http_2xx&target=URL``), CONCURRENCY at a time,
  over keep-alive connections to the exporter.

MODE is ``close`` (a new connection per check) or ``keep-alive`` (the pool's).
``--watch NAME=PID[,PID]`` (repeatable) also reports the CPU those processes
used during the measured interval (read from /proc). Every loop is bounded in
count (N) and in time (``TIME_LIMIT``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import sys
import time
from pathlib import Path
from typing import Any

TIME_LIMIT = 300.0  # seconds: give up (and fail) rather than run on


def status_mb(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field} in /proc/self/status")


def own_cpu() -> float:
    """CPU seconds of this process, all its threads, user + system (children not included)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class Meter:
    """Wall time, own CPU and the watched processes' CPU over one interval."""

    def __init__(self, watch: dict[str, list[int]]) -> None:
        from bench.services import tree_cpu_seconds

        self._tree = tree_cpu_seconds
        self.watch = watch
        self.figures: dict[str, float] = {}

    def __enter__(self) -> Meter:
        self._others = {name: self._tree(pids) for name, pids in self.watch.items()}
        self._cpu = own_cpu()
        self._wall = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        wall = time.perf_counter() - self._wall
        cpu = own_cpu() - self._cpu
        self.figures = {"wall_s": wall, "cpu_s": cpu}
        for name, pids in self.watch.items():
            self.figures[f"{name}_cpu_s"] = self._tree(pids) - self._others[name]


# -- maintd ---------------------------------------------------------------------------------


def plan_document(url: str, n: int, concurrency: int, params: dict[str, Any]) -> dict[str, Any]:
    """One ``http`` task on N targets (label selector), each target's connection.url = URL."""
    from bench.common import DUE_NOW

    targets = [
        {"name": f"web{i:05d}", "kind": "service", "labels": {"bench": "probe"}, "connection": {"url": url}}
        for i in range(n)
    ]
    task = {
        "name": "probe",
        "kind": "http",
        "targets": {"labels": {"bench": "probe"}},
        "schedule": DUE_NOW,
        "params": params,
    }
    return {"runner": {"concurrency": concurrency}, "targets": targets, "tasks": [task]}


def http_params(mode: str) -> dict[str, Any]:
    """The task's params for a connection mode."""
    from maintd.checks.http import HttpConfig

    keep_alive = mode == "keep-alive"
    if "keep_alive" in HttpConfig.model_fields:
        return {"keep_alive": keep_alive}
    return {} if keep_alive else {"headers": {"Connection": "close"}}


async def run_maintd(
    db_url: str, url: str, n: int, concurrency: int, mode: str, watch: dict[str, list[int]]
) -> dict[str, Any]:
    import gc

    from sqlalchemy import func, select

    import maintd.server  # noqa: F401  (what a serving process has imported)
    from bench.common import T0, open_store
    from maintd.clock import FakeClock
    from maintd.engine import Engine
    from maintd.plan.loader import plan_from_document
    from maintd.registry import Registry
    from maintd.settings import Settings
    from maintd.store.models import RunRow

    reg = Registry.default(plugins=False)
    params = http_params(mode)
    store = open_store(db_url)
    try:
        clock = FakeClock(T0)
        engine = Engine(Settings(database_url=db_url), store=store, registry=reg, clock=clock)
        started = time.perf_counter()
        loaded = plan_from_document(plan_document(url, n, concurrency, params), reg, source="<bench probe>")
        engine.activate(loaded, "bench", "bench")
        activate_s = time.perf_counter() - started
        del loaded
        gc.collect()
        before_mb = status_mb("VmRSS")
        counter = engine.metrics.runs

        def queued() -> float:  # runs finished and queued for recording, any status
            return sum(s.value for m in counter.collect() for s in m.samples if s.name.endswith("_total"))

        deadline = time.monotonic() + TIME_LIMIT
        with Meter(watch) as meter:
            engine.start()
            while queued() < n and time.monotonic() < deadline:
                await asyncio.sleep(0.01)
            await engine.runner.flush()
        await engine.stop(1.0)
        with store.read() as session:
            rows = session.execute(
                select(RunRow.status, func.count()).where(RunRow.state == "finished").group_by(RunRow.status)
            ).all()
            sample = (
                session.scalars(select(RunRow.output).where(RunRow.status != "ok").limit(1)).first()
                or session.scalars(select(RunRow.output).limit(1)).first()
            )
    finally:
        store.dispose()
    statuses = {str(status): int(count) for status, count in rows}
    return {
        **meter.figures,
        "checks": n,
        "statuses": statuses,
        "ok": statuses.get("ok", 0),
        "sample_output": sample,
        "activate_s": activate_s,
        "params": params,
        "rss_before_mb": before_mb,
        "rss_mb": status_mb("VmRSS"),
        "peak_mb": status_mb("VmHWM"),
    }


# -- aiohttp alone --------------------------------------------------------------------------


async def run_aiohttp(
    url: str, n: int, concurrency: int, mode: str, watch: dict[str, list[int]]
) -> dict[str, Any]:
    import aiohttp

    headers = {} if mode == "keep-alive" else {"Connection": "close"}
    ok = 0
    next_index = 0
    deadline = time.monotonic() + TIME_LIMIT
    connector = aiohttp.TCPConnector(limit=256, ttl_dns_cache=60)
    async with aiohttp.ClientSession(connector=connector, headers={"User-Agent": "maintd"}) as session:

        async def worker() -> None:
            nonlocal ok, next_index
            while next_index < n and time.monotonic() < deadline:
                next_index += 1
                try:
                    async with session.get(
                        url, headers=headers, timeout=aiohttp.ClientTimeout(total=300)
                    ) as r:
                        ok += 200 <= r.status < 400
                except (TimeoutError, aiohttp.ClientError):
                    pass

        with Meter(watch) as meter:
            await asyncio.gather(*(worker() for _ in range(concurrency)))
    return {**meter.figures, "checks": next_index, "ok": ok}


# -- the http kind's client alone ------------------------------------------------------------


async def run_client(
    url: str, n: int, concurrency: int, mode: str, watch: dict[str, list[int]]
) -> dict[str, Any]:
    from maintd.checks.http.client import HttpClient, HttpError

    client = HttpClient()
    keep_alive = mode == "keep-alive"
    ok = 0
    next_index = 0
    deadline = time.monotonic() + TIME_LIMIT

    async def worker() -> None:
        nonlocal ok, next_index
        while next_index < n and time.monotonic() < deadline:
            next_index += 1
            try:
                async with asyncio.timeout(300):
                    response = await client.request("GET", url, {}, keep_alive=keep_alive)
                ok += 200 <= response.status < 400
            except (TimeoutError, HttpError):
                pass

    with Meter(watch) as meter:
        await asyncio.gather(*(worker() for _ in range(concurrency)))
    await client.aclose()
    return {**meter.figures, "checks": next_index, "ok": ok}


# -- blackbox_exporter's driver -----------------------------------------------------------


async def run_blackbox(
    exporter: str, url: str, n: int, concurrency: int, watch: dict[str, list[int]]
) -> dict[str, Any]:
    import aiohttp

    probe = f"{exporter}/probe"
    query = {"module": "http_2xx", "target": url}
    ok = 0
    next_index = 0
    failed: list[str] = []
    deadline = time.monotonic() + TIME_LIMIT
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def worker() -> None:
            nonlocal ok, next_index
            while next_index < n and time.monotonic() < deadline:
                next_index += 1
                try:
                    async with session.get(probe, params=query, timeout=aiohttp.ClientTimeout(total=30)) as r:
                        body = await r.read()
                except (TimeoutError, aiohttp.ClientError) as exc:
                    failed.append(repr(exc))
                    continue
                if r.status == 200 and b"\nprobe_success 1\n" in body:
                    ok += 1
                elif len(failed) < 3:
                    failed.append(body.decode(errors="replace")[-300:])

        with Meter(watch) as meter:
            await asyncio.gather(*(worker() for _ in range(concurrency)))
    return {**meter.figures, "checks": next_index, "ok": ok, "failed_sample": failed[:3]}


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.probechild")
    parser.add_argument("--watch", action="append", default=[], metavar="NAME=PID[,PID]")
    sub = parser.add_subparsers(dest="what", required=True)
    m = sub.add_parser("maintd")
    m.add_argument("db_url")
    a = sub.add_parser("aiohttp")
    k = sub.add_parser("client")
    b = sub.add_parser("blackbox")
    b.add_argument("exporter")
    for p in (m, a, k, b):
        p.add_argument("url")
        p.add_argument("n", type=int)
        p.add_argument("concurrency", type=int)
    for p in (m, a, k):
        p.add_argument("mode", choices=("close", "keep-alive"))
    args = parser.parse_args(argv)
    watch = {}
    for item in args.watch:
        name, _, pids = item.partition("=")
        watch[name] = [int(p) for p in pids.split(",") if p]
    if args.what == "maintd":
        result = asyncio.run(run_maintd(args.db_url, args.url, args.n, args.concurrency, args.mode, watch))
    elif args.what == "aiohttp":
        result = asyncio.run(run_aiohttp(args.url, args.n, args.concurrency, args.mode, watch))
    elif args.what == "client":
        result = asyncio.run(run_client(args.url, args.n, args.concurrency, args.mode, watch))
    else:
        result = asyncio.run(run_blackbox(args.exporter, args.url, args.n, args.concurrency, watch))
    print(json.dumps(result))


if __name__ == "__main__":
    main(sys.argv[1:])
