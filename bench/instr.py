"""Instructions per run of the engine's hot path, counted by callgrind (load-independent).

Wall and CPU times on a shared 2-core machine swing by ±30 % between runs; instruction
counts of the same work do not. ``python -m bench.instr REGION`` runs itself under
``valgrind --tool=callgrind --instr-atstart=no``, switches instrumentation on only around
the measured region (``callgrind_control`` on its own pid) and prints instructions per run
of each phase, as one JSON line:

``claim-record``: ``Engine.tick()`` claiming N runs of one ``http`` task on N targets, then
  ``Runner._write_sync()`` recording them in batches of ``--batch`` (results shaped as the
  ``http`` kind's, each ``finished_at`` distinct as with a real clock; no network).
``loop``: the engine's own loop (``Engine.start()``) running N runs of ``--kind`` (``noop``,
  or ``http`` against the bench's nginx with a new connection per check), from the start
  until every result is stored: claim, run and record together. As in ``http-probe``, a
  ``FakeClock`` gives every run the same timestamps; and as callgrind runs the process ~50x
  slower, the recorder's 50 ms gather holds fewer runs (~20-25 a batch against ~250 in the
  benchmark), so per-batch costs weigh more here than there.
``client``: the same N GETs through the ``http`` kind's own client with no engine: the floor
  under ``loop --kind http``.
``drain``: ``maintd intake``'s journal holding N alerts in native bodies of ``--batch`` made
  into alerts and incidents by ``Drain.drain_once`` (as ``bench.drainmicro``), per alert.

``--stores sqlite,postgresql`` picks the stores; ``--keep DIR`` keeps the callgrind files
(for ``callgrind_annotate``). Needs valgrind; ``--kind http`` and ``client`` need nginx.
Before/after: run the same command with ``PYTHONPATH=OTHER_TREE/src`` (the child inherits it).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
from datetime import timedelta
from pathlib import Path
from typing import Any

PHASES = ("claim", "record", "loop", "drain")


def _control(*args: str) -> None:
    """callgrind_control on this process (it waits until callgrind has done it)."""
    subprocess.run(["callgrind_control", *args, str(os.getpid())], check=True, capture_output=True)


class Region:
    """Instrumentation on from ``start()``; ``phase(name)`` dumps (and zeroes) what ran since."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled

    def start(self) -> None:
        if self.enabled:
            _control("--zero")
            _control("--instr=on")

    def phase(self, name: str) -> None:
        if self.enabled:
            _control(f"--dump={name}")

    def stop(self) -> None:
        if self.enabled:
            _control("--instr=off")


# -- the measured processes ---------------------------------------------------------------


def _engine(url: str, document: dict[str, Any], reg: Any) -> Any:
    from bench.common import T0, open_store
    from maintd.clock import FakeClock
    from maintd.engine import Engine
    from maintd.plan.loader import plan_from_document
    from maintd.settings import Settings

    store = open_store(url)
    engine = Engine(Settings(database_url=url), store=store, registry=reg, clock=FakeClock(T0))
    engine.activate(plan_from_document(document, reg, source="<bench instr>"), "bench", "bench")
    return engine


def claim_record(url: str, n: int, batch: int, region: Region) -> None:
    import maintd.server  # noqa: F401  (what a serving process has imported)
    from bench.probechild import http_params, plan_document
    from maintd.checks.base import CheckResult, Status
    from maintd.registry import Registry
    from maintd.runner.recorder import Finished

    reg = Registry.default(plugins=False)
    document = plan_document("http://127.0.0.1:9/probe.txt", n, 16, http_params("close"))
    engine = _engine(url, document, reg)
    now = engine.clock.now()
    orders = []
    region.start()
    while batch_orders := engine.tick(now)[0]:
        orders.extend(batch_orders)
    region.phase("claim")
    for start in range(0, len(orders), batch):
        finished = []
        for i, order in enumerate(orders[start : start + batch], start):
            at = now + timedelta(microseconds=500 * i + 250)
            metrics = {"time": 0.000412 + i * 1e-6, "status_code": 200.0}
            output = f"GET {order.target.connection['url']} → 200 in 0 ms"
            result = CheckResult(Status.ok, output, metrics)
            finished.append(Finished(order, result, "finished", None, at, 0.5 + i * 1e-3))
        engine.runner._write_sync(finished)
    region.phase("record")
    region.stop()
    if len(orders) != n:
        raise SystemExit(f"claimed {len(orders)} runs, expected {n}")
    engine.store.dispose()


async def loop(url: str, n: int, concurrency: int, kind: str, target: str, region: Region) -> None:
    import maintd.server  # noqa: F401
    from bench.common import DUE_NOW, registry
    from bench.probechild import http_params, plan_document
    from maintd.registry import Registry

    if kind == "http":
        reg = Registry.default(plugins=False)
        document = plan_document(target, n, concurrency, http_params("close"))
    else:
        reg = registry()
        targets = [{"name": f"t{i:05d}", "kind": "host", "labels": {"b": "y"}} for i in range(n)]
        task = {"name": "k", "kind": "noop", "targets": {"labels": {"b": "y"}}, "schedule": DUE_NOW}
        document = {"runner": {"concurrency": concurrency}, "targets": targets, "tasks": [task]}
    engine = _engine(url, document, reg)
    runner = engine.runner
    # Told when every run is stored, without polling (a poll of the metrics every 10 ms of a run
    # slowed ~50x by callgrind was a noticeable share of the count).
    stored, batches, all_stored = 0, 0, asyncio.Event()
    write, recorded = runner._write_sync, runner.on_recorded

    def counting_write(batch: list[Any]) -> Any:
        nonlocal stored
        due = write(batch)
        stored += len(batch)
        return due

    def on_recorded(due: Any) -> None:
        nonlocal batches
        batches += 1
        if recorded is not None:
            recorded(due)
        if stored >= n:
            all_stored.set()

    runner._write_sync, runner.on_recorded = counting_write, on_recorded
    region.start()
    engine.start()
    await all_stored.wait()
    region.phase("loop")
    region.stop()
    ticks = engine.metrics.scheduler_ticks._value.get()
    print(json.dumps({"recorded_batches": batches, "ticks": ticks}))
    await engine.stop(1.0)
    engine.store.dispose()


async def client_alone(n: int, concurrency: int, target: str, region: Region) -> None:
    """The same GETs through the ``http`` kind's client and no engine: the floor under ``loop``."""
    from maintd.checks.base import Resources

    resources = Resources()
    client = resources.http_client
    left = n

    async def worker() -> None:
        nonlocal left
        while left > 0:
            left -= 1
            async with asyncio.timeout(60):
                response = await client.request("GET", target, {})
            assert response.status == 200

    region.start()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    region.phase("loop")
    region.stop()
    await resources.aclose()


def drain(url: str, n: int, batch: int, region: Region) -> None:
    from bench.common import open_store
    from bench.drainmicro import drain_all, prepared

    store = open_store(url)
    try:
        drainer = prepared(store, "native", n, batch)
        region.start()
        drained = drain_all(drainer)
        region.phase("drain")
        region.stop()
        if drained != n:
            raise SystemExit(f"{drained} alerts drained, not {n}")
    finally:
        store.dispose()


def child(argv: list[str]) -> None:
    args = _parser().parse_args(argv)
    region = Region(enabled=True)
    if args.region == "drain":
        drain(args.db_url, args.n, args.batch, region)
    elif args.region == "claim-record":
        claim_record(args.db_url, args.n, args.batch, region)
    elif args.region == "client":
        asyncio.run(client_alone(args.n, args.concurrency, args.target, region))
    else:
        asyncio.run(loop(args.db_url, args.n, args.concurrency, args.kind, args.target, region))


# -- the driver ---------------------------------------------------------------------------


def measure(region: str, store_kind: str, opts: argparse.Namespace, keep: Path | None) -> dict[str, Any]:
    from bench.common import scratch_store

    with scratch_store(store_kind) as url, tempfile.TemporaryDirectory(prefix="maintd-instr-") as tmp:
        out = Path(tmp) / "callgrind.out"
        argv = [region, "--db-url", url, "-n", str(opts.n), "--batch", str(opts.batch)]
        argv += ["--concurrency", str(opts.concurrency), "--kind", opts.kind, "--target", opts.target]
        cmd = ["valgrind", "--tool=callgrind", "--instr-atstart=no", f"--callgrind-out-file={out}"]
        cmd += [sys.executable, "-m", "bench.instr", "--child", *argv]
        env = {**os.environ, "PYTHONHASHSEED": "0"}
        done = subprocess.run(cmd, capture_output=True, text=True, env=env)
        if done.returncode != 0:
            raise SystemExit(f"{' '.join(cmd)} failed:\n{done.stderr[-3000:]}")
        figures: dict[str, Any] = {"region": region, "store": store_kind, "n": opts.n}
        for line in done.stdout.splitlines():
            if line.startswith("{"):
                figures.update(json.loads(line))
        for dump in sorted(Path(tmp).glob("callgrind.out.*")):
            text = dump.read_text(errors="replace")
            phase = next(p for p in PHASES if f"\ndesc: Trigger: dump {p}\n" in text)
            total = next(int(line.split()[1]) for line in text.splitlines() if line.startswith("totals:"))
            figures[f"{phase}_per_run"] = round(total / opts.n)
            if keep is not None:
                keep.mkdir(parents=True, exist_ok=True)
                (keep / f"{region}-{store_kind}-{phase}.out").write_text(text)
        return figures


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench.instr")
    parser.add_argument("region", choices=("claim-record", "loop", "client", "drain"))
    parser.add_argument("--db-url", default="")
    parser.add_argument("--stores", default="sqlite")
    parser.add_argument("-n", type=int, default=1000)
    parser.add_argument(
        "--batch",
        type=int,
        help="runs per recorded batch (claim-record, default 250); alerts per body (drain, 1)",
    )
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--kind", choices=("noop", "http"), default="noop")
    parser.add_argument("--target", default="", help="the URL (loop --kind http; default: the bench's nginx)")
    parser.add_argument("--keep", type=Path, help="keep the callgrind files here")
    return parser


def main(argv: list[str]) -> None:
    if argv[:1] == ["--child"]:
        child(argv[1:])
        return
    opts = _parser().parse_args(argv)
    if opts.batch is None:
        opts.batch = 1 if opts.region == "drain" else 250
    for store_kind in opts.stores.split(","):
        if (opts.region == "client" or opts.kind == "http") and not opts.target:
            from bench import services

            with services.nginx() as web:
                opts.target = f"http://127.0.0.1:{web.port}{services.PATH}"
                print(json.dumps(measure(opts.region, store_kind, opts, opts.keep)), flush=True)
                opts.target = ""
        else:
            print(json.dumps(measure(opts.region, store_kind, opts, opts.keep)), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
