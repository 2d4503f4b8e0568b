"""One ``ingest`` case, quickly, and A/B rounds of maintd source trees against each other.

``python -m bench.ingestab [--route webhook] [--batch 1] [--store sqlite] [-n 3000] [--rounds 3]
[--alertmanager] [NAME=SRC ...]``

Each NAME=SRC is a source tree (a ``src`` folder holding ``maintd``) that the server runs
from (``PYTHONPATH``); without any, the installed package runs under the name ``installed``.
Rounds interleave the trees (A, B, A, B, ...) so that both meet the same load from whatever
else shares the machine. Prints one line per sample, then per tree the median alerts/s and
the server's CPU per request and per alert. With ``--alertmanager``, each round also sends the
same alerts to Alertmanager (``POST /api/v2/alerts``, null receiver), as ``bench.ingest`` does.
"""

from __future__ import annotations

import argparse
import os
import statistics
from typing import Any

from bench import ingest

ALERTMANAGER = "alertmanager"


def case(store_kind: str, route: str, n: int, batch: int, src: str | None) -> dict[str, Any]:
    """One maintd case as ``bench.ingest`` runs it, the server running from ``src`` when given."""
    before = os.environ.get("PYTHONPATH")
    if src:
        os.environ["PYTHONPATH"] = os.path.abspath(src)
    try:
        return ingest._maintd_case(store_kind, route, n, batch)
    finally:
        if before is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = before


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.ingestab", description=__doc__)
    parser.add_argument("--route", choices=list(ingest.ROUTES), default="webhook")
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--store", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("-n", type=int, default=3000, help="alerts per sample")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--alertmanager", action="store_true", help="Alertmanager in every round too")
    parser.add_argument("trees", nargs="*", metavar="NAME=SRC")
    args = parser.parse_args(argv)
    trees = [tuple(t.split("=", 1)) for t in args.trees] or [("installed", "")]
    if args.alertmanager:
        trees.append((ALERTMANAGER, ""))
    samples: dict[str, list[dict[str, Any]]] = {name: [] for name, _ in trees}
    requests = -(-args.n // args.batch)
    for _ in range(args.rounds):
        for name, src in trees:
            if name == ALERTMANAGER:
                s = ingest._alertmanager_case(args.n, args.batch)
            else:
                s = case(args.store, args.route, args.n, args.batch, src or None)
            samples[name].append(s)
            print(
                f"{name}: {s['rate']:,.0f} alerts/s, p50 {s['p50_ms']:.1f} ms, p99 {s['p99_ms']:.1f} ms,"
                f" server CPU {s['server_cpu_s'] * 1e6 / requests:,.0f} µs/request,"
                f" driver CPU {s['driver_cpu_s']:.1f} s, RSS {s['server_rss_mb']:.1f} MB",
                flush=True,
            )
    print(f"-- {args.route}, batch {args.batch}, {args.store}, {args.n} alerts, {args.rounds} rounds")
    for name, found in samples.items():
        rate = statistics.median(s["rate"] for s in found)
        cpu = statistics.median(s["server_cpu_s"] for s in found)
        print(
            f"{name}: median {rate:,.0f} alerts/s ({min(s['rate'] for s in found):,.0f}-"
            f"{max(s['rate'] for s in found):,.0f}), server CPU {cpu * 1e6 / requests:,.0f} µs/request,"
            f" {cpu * 1e6 / args.n:,.0f} µs/alert, max RSS {max(s['server_rss_mb'] for s in found):.1f} MB"
        )


if __name__ == "__main__":
    main()
