"""Run maintd's benchmarks and print one table (see docs/benchmarks.md).

Exits 1 when a target is missed or a benchmark fails, 0 when all pass.
"""

from __future__ import annotations

import argparse
import json
import time
import traceback
from collections.abc import Callable
from dataclasses import asdict

from rich.console import Console
from rich.table import Table

import bench.capacity  # capacity projections (maintd.capacity)
import bench.dr_drill
import bench.ingestreplicas  # [lease] ingestion with 2 API replicas against 1 (issue 8)
import bench.lease  # scheduler lease takeover (maintd.lease)
import bench.logs
import bench.workers  # [executor] Celery workers against the local executor
from bench import backup_verify, dispatch, ingest, latency, memory, nagios, probe, services, tick, timers
from bench.common import PG_ADMIN_URL, STORES, Result, Shape, machine_info, scratch_store, shapes

# A benchmark returns one result, or several (one per case it runs inside).
Bench = Callable[[str, str, Shape, bool], Result | list[Result]]
BENCHMARKS: dict[str, tuple[Bench, str]] = {
    "tick": (tick.run, "< 10 ms"),
    "dispatch": (dispatch.run, ">= 2,000 runs/s"),
    "dispatch-loop": (dispatch.run_loop, ">= 2,000 runs/s"),
    "memory": (memory.run, "< 150 MB RSS"),
    "http-probe": (probe.run, probe.TARGET),
    "nagios-overhead": (nagios.run, nagios.TARGET),
    "ingest": (ingest.run, ingest.TARGET),
    "ingest-replicas": (bench.ingestreplicas.run, bench.ingestreplicas.TARGET),  # [lease] API replicas
    "timers": (timers.run, timers.TARGET),
    "latency": (latency.run, latency.TARGET),
    "backup-verify": (backup_verify.run, backup_verify.TARGET),
    "logs": (bench.logs.run, bench.logs.TARGET),
    "dr-drill": (bench.dr_drill.run, bench.dr_drill.TARGET),
    "capacity": (bench.capacity.run, bench.capacity.TARGET),  # capacity projections (no store needed)
    "lease-takeover": (bench.lease.run, bench.lease.TARGET),  # scheduler pair: SIGKILL the holder
    "workers": (bench.workers.run, bench.workers.TARGET),  # [executor] runs/min: local, 1 and 2 workers
}

# Throughput varies from run to run more than latency: run these several times (not with --quick).
REPEATS: dict[str, tuple[int, str]] = {"dispatch": (3, "runs_per_s"), "dispatch-loop": (3, "runs_per_s")}

# These build their own plans (and repeat inside): run once, on SQLite only; --shapes does not apply.
OWN_PLAN = {
    "http-probe": "sqlite",
    "nagios-overhead": "sqlite",
    "backup-verify": "sqlite",
    "logs": "sqlite",
    "dr-drill": "sqlite",
    "capacity": "sqlite",  # in-memory series: the store is not used
    "lease-takeover": "postgresql",  # the lease exists on PostgreSQL only
    "workers": "postgresql",  # [executor] workers need PostgreSQL
    "ingest-replicas": "postgresql",  # [lease] --role api needs PostgreSQL; its own servers and databases
}
# These start their own servers on their own databases (and repeat inside): once per store, no shapes.
OWN_SERVERS = {"ingest", "latency"}
# These make their own rows: once per store; --shapes does not apply.
OWN_ROWS = {"timers"}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="1,000 rows instead of 10,000: a smoke run")
    parser.add_argument(
        "--only",
        default="",
        metavar="NAME",
        help=f"comma-separated benchmarks to run: {', '.join(BENCHMARKS)}",
    )
    parser.add_argument("--stores", default=",".join(STORES), help="comma-separated: sqlite,postgresql")
    parser.add_argument("--shapes", default="grid,flat", help="comma-separated plan shapes: grid,flat")
    parser.add_argument(
        "--pg-url", default=PG_ADMIN_URL, help="PostgreSQL server (a scratch database is made and dropped)"
    )
    parser.add_argument("--markdown", action="store_true", help="also print the table as Markdown")
    parser.add_argument("--json", metavar="PATH", help="also write machine info and results as JSON")
    args = parser.parse_args(argv)
    args.only = _split(args.only) or list(BENCHMARKS)
    args.stores = _split(args.stores)
    args.shapes = _split(args.shapes)
    for name, allowed, what in (
        (args.only, BENCHMARKS, "benchmark"),
        (args.stores, STORES, "store"),
        (args.shapes, ("grid", "flat"), "shape"),
    ):
        unknown = [n for n in name if n not in allowed]
        if unknown:
            parser.error(f"unknown {what} {', '.join(unknown)}; choose from {', '.join(allowed)}")
    return args


def _split(value: str) -> list[str]:
    return [v.strip() for v in value.split(",") if v.strip()]


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    console = Console(width=None if Console().is_terminal else 160)
    progress = Console(stderr=True)
    info = machine_info(args.stores, args.pg_url)
    if (OWN_PLAN.keys() | OWN_SERVERS) & set(args.only):
        info.update(services.versions())
    all_shapes = shapes(args.quick)
    console.print(_machine_table(info, args.quick, [all_shapes[s] for s in args.shapes]))
    results: list[Result] = []
    for name in args.only:
        bench, target = BENCHMARKS[name]
        for store, shape in _cases(name, args, all_shapes):
            what = "its own plans" if name in OWN_PLAN else shape.describe()
            what = "its own servers" if name in OWN_SERVERS else what
            what = "its own timers" if name in OWN_ROWS else what
            progress.print(f"[dim]running {name} on {store}, {what}...[/dim]")
            started = time.perf_counter()
            try:
                found = _repeated(bench, name, store, shape, args)
            except Exception as exc:
                traceback.print_exc()
                found = Result(
                    name, store, shape.name, "error", target, None, f"{type(exc).__name__}: {exc}"[:300]
                )
            for result in found if isinstance(found, list) else [found]:
                result.details.setdefault("wall_s", round(time.perf_counter() - started, 2))
                results.append(result)
    console.print(_results_table(results, args.quick))
    if args.markdown:
        print(markdown(results, args.quick))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(
                {"machine": info, "quick": args.quick, "results": [asdict(r) for r in results]}, fh, indent=2
            )
    return 0 if all(r.passed for r in results) else 1


def _cases(name: str, args: argparse.Namespace, all_shapes: dict[str, Shape]) -> list[tuple[str, Shape]]:
    """The (store, shape) pairs a benchmark runs on; OWN_PLAN ones use the shape only for N."""
    if name in OWN_PLAN:
        store = OWN_PLAN[name]
        if store not in args.stores:
            Console(stderr=True).print(f"[yellow]{name} runs on {store} only: skipped (--stores)[/yellow]")
            return []
        return [(store, all_shapes["flat"])]
    if name in OWN_SERVERS or name in OWN_ROWS:
        return [(store, all_shapes["flat"]) for store in args.stores]
    return [(store, all_shapes[s]) for store in args.stores for s in args.shapes]


def _repeated(
    bench: Bench, name: str, store: str, shape: Shape, args: argparse.Namespace
) -> Result | list[Result]:
    """Run a case (each time on a new scratch database); of several, keep the median one."""
    times, key = REPEATS.get(name, (1, ""))
    results = []
    for _ in range(1 if args.quick else times):
        with scratch_store(store, args.pg_url) as url:
            found = bench(url, store, shape, args.quick)
        if isinstance(found, list):
            return found  # several cases: the benchmark repeats inside
        results.append(found)
    if len(results) == 1:
        return results[0]
    results.sort(key=lambda r: r.details[key])
    chosen = results[len(results) // 2]
    low, high = results[0].details[key], results[-1].details[key]
    chosen.note = f"median of {len(results)} ({low:,.0f}-{high:,.0f}); {chosen.note}"
    chosen.details["repeats"] = [r.details[key] for r in results]
    return chosen


def _machine_table(info: dict[str, str], quick: bool, used: list[Shape]) -> Table:
    table = Table(
        title="maintd benchmarks" + (" (--quick: 1,000 rows, not the targets' 10,000)" if quick else "")
    )
    table.add_column("machine", style="bold")
    table.add_column("")
    for key, value in info.items():
        table.add_row(key, value)
    for shape in used:
        table.add_row(f"shape {shape.name}", f"{shape.describe()} = {shape.rows:,} schedule rows")
    return table


def _verdict(passed: bool | None) -> str:
    return {True: "pass", False: "FAIL", None: "ERROR"}[passed]


def _results_table(results: list[Result], quick: bool) -> Table:
    table = Table(title="results" + (" (quick run: targets are for 10,000 rows)" if quick else ""))
    for column in ("benchmark", "store", "shape", "result", "target", "pass/fail", "notes"):
        table.add_column(column, overflow="fold")
    for r in results:
        style = {True: "green", False: "red", None: "yellow"}[r.passed]
        verdict = f"[{style}]{_verdict(r.passed)}[/]"
        table.add_row(r.benchmark, r.store, r.shape, r.result, r.target, verdict, r.note)
    return table


def markdown(results: list[Result], quick: bool) -> str:
    lines = [
        "| benchmark | store | shape | result | target | pass/fail | notes |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in results:
        cells = (r.benchmark, r.store, r.shape, r.result, r.target, _verdict(r.passed), r.note)
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
