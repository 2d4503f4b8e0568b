"""Benchmark ``ingest-replicas`` (issue 8): alert ingestion with 2 API replicas against 1, on PostgreSQL.

Each case starts, on a new PostgreSQL database, one ``maintd serve --role scheduler`` and
1 or 2 ``maintd serve --role api`` processes on ports of their own, then the load driver of
``ingest`` (``bench.ingestchild``): N distinct alerts as Alertmanager webhook bodies of
BATCH alerts over 16 keep-alive connections, the connections spread round robin over the
replicas (what a load balancer in front of them would do). Every 2xx follows the commit of
its alerts, as with one process; the stored alerts are counted afterwards.

Measured per case: accepted alerts/s, p50/p99 request latency, the API replicas' CPU
seconds (summed) and the scheduler's, the replicas' RSS (summed), the driver's CPU. The
cases interleave (1 replica, then 2, at each batch size) so both meet the same load; a full
run repeats each three times and reports medians.

``python -m bench.ingestreplicas [--batch 1,10,100] [-n 20000] [--rounds 3]`` runs it alone
and prints one line per sample.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
from collections.abc import Iterator
from typing import Any

from bench import ingest, services
from bench.common import Result, Shape, child_json, scratch_store

REPLICAS = (1, 2)
ROUTE = "webhook"
TARGET = "2 API replicas: >= 1 replica's alerts/s (issue 8 asks for the figure)"


def run(url: str, store_kind: str, shape: Shape, quick: bool) -> list[Result]:
    """The benchmark as ``python -m bench`` runs it; ``url`` is unused (each case has its own database)."""
    if store_kind != "postgresql":
        raise ValueError("API replicas need PostgreSQL (maintd serve --role api)")
    n = 2_000 if quick else 20_000
    samples = rounds(ingest.BATCHES, n, 1 if quick else 3)
    return [_result(samples, batch) for batch in ingest.BATCHES]


def rounds(
    batches: tuple[int, ...], n: int, repeats: int, echo: bool = False
) -> dict[tuple[int, int], list[dict[str, Any]]]:
    samples: dict[tuple[int, int], list[dict[str, Any]]] = {}
    for _ in range(repeats):
        for batch in batches:
            for replicas in REPLICAS:
                sample = case(replicas, n, batch)
                samples.setdefault((replicas, batch), []).append(sample)
                if echo:
                    print(_line(replicas, batch, sample), flush=True)
    return samples


def case(replicas: int, n: int, batch: int) -> dict[str, Any]:
    """One sample: a scheduler and ``replicas`` API processes on a new database, N alerts driven."""
    with scratch_store("postgresql") as db_url:
        with _cluster(db_url, replicas) as (urls, api_pids, scheduler):
            commits = _commits(db_url)
            args = [
                ROUTE,
                ",".join(urls),
                str(n),
                str(batch),
                str(ingest.CONNECTIONS),
                ",".join(map(str, [*api_pids, scheduler])),
            ]
            sample = child_json("bench.ingestchild", args)
        # Counted once the servers stopped: a backend's statistics are written when it exits.
        sample["transactions"] = _commits(db_url) - commits
        stored = ingest._stored_alerts(db_url)
    if sample["accepted"] != n or stored != n:
        raise AssertionError(
            f"{replicas} replicas: {sample['accepted']} accepted, {stored} stored of {n}: {sample['errors']}"
        )
    # The driver summed every PID given; split the scheduler's share back out.
    *api_cpu, scheduler_cpu = sample["server_cpu_by_pid"]
    sample.update(replicas=replicas, api_cpu_s=sum(api_cpu), scheduler_cpu_s=scheduler_cpu)
    sample["api_rss_mb"] = sum(sample["server_rss_by_pid"][:-1])
    return sample


def _commits(db_url: str) -> int:
    """Transactions committed in this database so far (all processes), from pg_stat_database."""
    from sqlalchemy import create_engine, text

    engine = create_engine(db_url)
    try:
        with engine.connect() as conn:
            found = conn.scalar(
                text("SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()")
            )
    finally:
        engine.dispose()
    return int(found or 0)


@contextlib.contextmanager
def _cluster(db_url: str, replicas: int) -> Iterator[tuple[list[str], list[int], int]]:
    """(the replicas' webhook URLs, their PIDs, the scheduler's PID), all answering /healthz."""
    with ingest.prepared(db_url) as (root, env, _token, key), contextlib.ExitStack() as stack:
        scheduler = stack.enter_context(
            ingest.serving(root, env, services.free_port(), "--role", "scheduler")
        )
        apis = [
            stack.enter_context(ingest.serving(root, env, services.free_port(), "--role", "api"))
            for _ in range(replicas)
        ]
        urls = [f"http://127.0.0.1:{s.port}/integrations/alertmanager/{key}" for s in apis]
        yield urls, [s.proc.pid for s in apis], scheduler.proc.pid


def _med(samples: list[dict[str, Any]], key: str) -> float:
    return float(statistics.median(s[key] for s in samples))


def _line(replicas: int, batch: int, s: dict[str, Any]) -> str:
    requests = -(-s["alerts"] // batch)
    return (
        f"{replicas} replica(s), batch {batch}: {s['rate']:,.0f} alerts/s, p50 {s['p50_ms']:.1f} ms,"
        f" p99 {s['p99_ms']:.1f} ms, API CPU {s['api_cpu_s']:.1f} s ({s['api_cpu_s'] * 1e6 / requests:,.0f}"
        f" µs/request), scheduler CPU {s['scheduler_cpu_s']:.1f} s, driver CPU {s['driver_cpu_s']:.1f} s,"
        f" API RSS {s['api_rss_mb']:.0f} MB, {s['transactions']:,} transactions committed"
    )


def _result(samples: dict[tuple[int, int], list[dict[str, Any]]], batch: int) -> Result:
    one, two = samples[(1, batch)], samples[(2, batch)]
    rate1, rate2 = _med(one, "rate"), _med(two, "rate")

    def figures(found: list[dict[str, Any]]) -> str:
        rates = sorted(s["rate"] for s in found)
        return (
            f"{_med(found, 'rate'):,.0f} alerts/s ({rates[0]:,.0f}-{rates[-1]:,.0f}),"
            f" p50 {_med(found, 'p50_ms'):.1f} ms, p99 {_med(found, 'p99_ms'):.1f} ms,"
            f" API CPU {_med(found, 'api_cpu_s'):.1f} s,"
            f" scheduler CPU {_med(found, 'scheduler_cpu_s'):.1f} s,"
            f" API RSS {_med(found, 'api_rss_mb'):.0f} MB"
        )

    return Result(
        "ingest-replicas",
        "postgresql",
        f"Alertmanager webhook, batch {batch}",
        f"2 replicas {rate2:,.0f} alerts/s = {rate2 / rate1:.2f}x 1 replica",
        TARGET,
        rate2 >= rate1,
        f"1 replica: {figures(one)}; 2 replicas: {figures(two)}",
        {"batch": batch, "one": one, "two": two},
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.ingestreplicas", description=__doc__)
    parser.add_argument("--batch", default="1,10,100", help="comma-separated batch sizes")
    parser.add_argument("-n", type=int, default=20_000, help="alerts per sample")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    batches = tuple(int(b) for b in args.batch.split(","))
    samples = rounds(batches, args.n, args.rounds, echo=True)
    print(f"-- webhook, PostgreSQL, {args.n} alerts, {args.rounds} rounds, medians")
    for batch in batches:
        for replicas in REPLICAS:
            found = samples[(replicas, batch)]
            print(
                f"{replicas} replica(s), batch {batch}: {_med(found, 'rate'):,.0f} alerts/s,"
                f" API CPU {_med(found, 'api_cpu_s'):.1f} s,"
                f" scheduler CPU {_med(found, 'scheduler_cpu_s'):.1f} s"
            )


if __name__ == "__main__":
    main()
