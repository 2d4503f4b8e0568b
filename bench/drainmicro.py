"""The drain's CPU per alert, in-process: ``maintd intake``'s journal made into alerts and incidents.

``python -m bench.drainmicro [--store sqlite|postgresql] [--route native|webhook] [--batch 1]
[-n 4000] [--profile FILE]``

A new database (SQLite in a temporary directory, or a scratch PostgreSQL database) gets N
distinct alerts in journal rows of BATCH, written with the database's own driver as the intake
writes them; then ``Drain.drain_once`` runs until the journal is empty, in this thread, with
no intake, no HTTP and no other process on the CPU. Printed: the drain's CPU and wall time per
alert, and on PostgreSQL the CPU of its server processes over the same time. The first 200
alerts are drained before the clock starts (imports, statement caches, query plans), and the
garbage collector is set as ``maintd serve`` sets it after loading a plan (with CPython's
default thresholds collections were a quarter of the drain's CPU here, not there). Run it
with ``PYTHONPATH=OTHER/src`` to compare two trees; CPU per alert swings by ±10 % from run to
run, so compare medians of several runs, or instructions: ``python -m bench.instr drain``
(``--profile`` writes a cProfile).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from bench.common import open_store, scratch_store
from bench.ingestchild import bodies
from bench.services import tree_cpu_seconds

WARM = 200


def database_cpu() -> float:
    """CPU seconds of every ``postgres`` process so far: the backends' and the WAL writer's work
    for the drain's statements is CPU the two cores do not have for maintd either."""
    pids = [int(p.parent.name) for p in Path("/proc").glob("[0-9]*/comm") if _comm(p) == "postgres"]
    return tree_cpu_seconds(pids)


def _comm(path: Path) -> str:
    try:
        return path.read_text().strip()
    except OSError:
        return ""


def journal(store: Any, payloads: list[bytes], route: str) -> None:
    """The rows as ``maintd intake`` writes them: its own statements over the raw driver."""
    from maintd.clock import SystemClock
    from maintd.intake.database import Row, opener

    url = store.engine.url.render_as_string(hide_password=False)
    database = opener(url)(url)
    source, actor, integration = ("native", "token:bench", None)
    if route == "webhook":
        source, actor, integration = ("alertmanager", "integration:am", "am")
    now = SystemClock().now()
    try:
        for start in range(0, len(payloads), 500):
            chunk = payloads[start : start + 500]
            database.insert([Row(now, source, actor, integration, None, body) for body in chunk])
    finally:
        database.close()


def prepared(store: Any, route: str, n: int, batch: int) -> Any:
    """A ``Drain`` on ``store`` with ``WARM`` alerts drained and ``n`` more waiting in the journal."""
    from maintd.activation import release_memory
    from maintd.api.deps import AppContext
    from maintd.clock import SystemClock
    from maintd.intake.drain import Drain
    from maintd.metrics import Metrics

    payloads = bodies(route, n + WARM, batch)
    warm = -(-WARM // batch)
    drain = Drain(AppContext(store, SystemClock(), Metrics()))
    journal(store, payloads[:warm], route)
    while drain.drain_once().progressed:
        pass
    journal(store, payloads[warm:], route)
    release_memory()  # as maintd serve after loading its plan: what is loaded frozen, GC thresholds
    return drain


def drain_all(drain: Any) -> int:
    """The alerts drained until the journal is empty."""
    alerts = 0
    while (done := drain.drain_once()).progressed:
        alerts += len(done.outcomes)
    return alerts


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.drainmicro", description=__doc__)
    parser.add_argument("--store", choices=["sqlite", "postgresql"], default="postgresql")
    parser.add_argument("--route", choices=["native", "webhook"], default="native")
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("-n", type=int, default=4000)
    parser.add_argument("--profile", help="write a cProfile of the measured drain here")
    args = parser.parse_args(argv)

    with scratch_store(args.store) as url:
        store = open_store(url)
        try:
            drain = prepared(store, args.route, args.n, args.batch)
            profiler = None
            if args.profile:
                import cProfile

                profiler = cProfile.Profile()
                profiler.enable()
            cpu, wall, db = time.thread_time(), time.perf_counter(), database_cpu()
            alerts = drain_all(drain)
            cpu, wall = time.thread_time() - cpu, time.perf_counter() - wall
            db = database_cpu() - db
            if profiler is not None:
                profiler.disable()
                profiler.dump_stats(args.profile)
        finally:
            store.dispose()
    print(
        f"{args.store} {args.route} batch {args.batch}: {alerts:,} alerts drained in {wall:.2f} s;"
        f" CPU {cpu * 1e6 / alerts:,.0f} µs/alert, wall {wall * 1e6 / alerts:,.0f} µs/alert"
        + (f", PostgreSQL's CPU {db * 1e6 / alerts:,.0f} µs/alert" if args.store == "postgresql" else "")
    )


if __name__ == "__main__":
    main()
