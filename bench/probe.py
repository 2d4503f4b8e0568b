"""Benchmark 4: ``http-probe``: N ``http`` checks through the engine, side by side with blackbox_exporter.

The benchmark starts its own nginx (one worker) serving a small static file on a
free port of 127.0.0.1, and its own blackbox_exporter whose ``http_2xx`` module
probes that URL. Then, at each concurrency (16 and 64), in fresh child processes
(``python -m bench.probechild``), so that each process's CPU is its own:

- **blackbox_exporter**: a driver (Python, aiohttp, keep-alive connections to the
  exporter) asks for N probes, ``GET /probe?module=http_2xx&target=URL``, that many
  at a time, and checks ``probe_success 1`` in each answer. Measured: probes/s, the
  exporter's CPU (utime+stime of its process from /proc, before/after) and the
  driver's, per probe.
- **maintd**: a plan of one ``http`` task on N targets (label selector; every
  target's ``connection.url`` is the URL), ``runner.concurrency`` = 16 or 64, all due
  at once, run by the engine's own loop on a new SQLite database until every result
  is stored. Measured: checks/s and the maintd process's CPU (getrusage, every
  thread: claiming, running, recording) per check; RSS afterwards.
  Twice: a new connection per check (as blackbox_exporter does) and with the
  shared session's keep-alive pool.
- **client alone**: the same N GETs through the ``http`` kind's own client
  (``maintd.checks.http.client``) from a bare loop of workers (no engine): the floor
  under maintd's figure, and so the engine's share of it.
- **aiohttp alone**: the same with an aiohttp session (the kind's client until
  2026-11-28), for comparison.

nginx's ``stub_status`` counts the connections each case opened. A full run repeats
everything three times and takes the median of each figure.
"""

from __future__ import annotations

import statistics
from typing import Any

from bench import services
from bench.common import Result, Shape, child_json, scratch_store

RATIO = 1.5  # maintd's checks per CPU-second over blackbox_exporter's probes per CPU-second
RSS_TARGET_MB = 200.0
TARGET = f">= {RATIO:g}x blackbox_exporter's probes per CPU-s and >= its probes/s"
CONCURRENCY = (16, 64)
MODES = {"close": "new connection", "keep-alive": "keep-alive"}


def run(url: str, store_kind: str, shape: Shape, quick: bool) -> list[Result]:
    n = shape.rows
    repeats = 1 if quick else 3
    samples: dict[tuple[str, int, str], list[dict[str, Any]]] = {}
    with services.nginx() as web, services.blackbox_exporter() as exporter:
        target = f"http://127.0.0.1:{web.port}{services.PATH}"
        exporter_url = f"http://127.0.0.1:{exporter.port}"
        for _ in range(repeats):
            for concurrency in CONCURRENCY:
                args = [target, str(n), str(concurrency)]
                watch = {"nginx": web.pids, "exporter": [exporter.proc.pid]}
                cases: list[tuple[str, str, list[str]]] = [
                    ("blackbox", "close", ["blackbox", exporter_url, *args])
                ]
                for mode in MODES:
                    cases.append(("maintd", mode, ["maintd", "DB", *args, mode]))
                    cases.append(("client", mode, ["client", *args, mode]))
                    cases.append(("aiohttp", mode, ["aiohttp", *args, mode]))
                for system, mode, argv in cases:
                    sample = _measure(web, argv, watch)
                    samples.setdefault((system, concurrency, mode), []).append(sample)
    results = [_compare(samples, concurrency, mode, n) for concurrency in CONCURRENCY for mode in MODES]
    results.append(_memory(samples, n))
    return results


def _measure(web: services.Server, argv: list[str], watch: dict[str, list[int]]) -> dict[str, Any]:
    """One child run; adds rates per check and the connections nginx accepted meanwhile."""
    flags = [f"--watch={name}={','.join(map(str, pids))}" for name, pids in watch.items()]
    accepts, requests = web.connections()
    if "DB" in argv:
        with scratch_store("sqlite") as db:
            sample = child_json("bench.probechild", [*flags, *[db if a == "DB" else a for a in argv]])
    else:
        sample = child_json("bench.probechild", [*flags, *argv])
    accepts_after, requests_after = web.connections()
    n = sample["checks"]
    sample["connections"] = accepts_after - accepts - 1  # the stub_status request itself
    sample["requests"] = requests_after - requests - 1
    sample["rate"] = n / sample["wall_s"]
    for key in ("cpu", "nginx_cpu", "exporter_cpu"):
        sample[f"{key}_ms"] = sample[f"{key}_s"] / n * 1000
    if sample["ok"] != n:
        raise AssertionError(f"{argv[0]}: {sample['ok']} of {n} checks ok: {sample}")
    return sample


def _med(samples: list[dict[str, Any]], key: str) -> float:
    return float(statistics.median(s[key] for s in samples))


def _compare(samples: dict[tuple[str, int, str], list[dict[str, Any]]], c: int, mode: str, n: int) -> Result:
    bb, md, bare, aio = (
        samples[("blackbox", c, "close")],
        samples[("maintd", c, mode)],
        samples[("client", c, mode)],
        samples[("aiohttp", c, mode)],
    )
    bb_rate, bb_cpu, bb_driver = _med(bb, "rate"), _med(bb, "exporter_cpu_ms"), _med(bb, "cpu_ms")
    rate, cpu = _med(md, "rate"), _med(md, "cpu_ms")
    ratio = bb_cpu / cpu  # (1 / cpu) / (1 / bb_cpu): checks per CPU-second, maintd over blackbox
    passed = ratio >= RATIO and rate >= bb_rate
    spread = ""
    if len(md) > 1:
        rates = sorted(s["rate"] for s in md)
        spread = f"median of {len(md)} ({rates[0]:,.0f}-{rates[-1]:,.0f}/s); "
    return Result(
        "http-probe",
        "sqlite",
        f"c{c}, {MODES[mode]}",
        f"{rate:,.0f} checks/s, {cpu:.2f} CPU-ms/check = {ratio:.2f}x",
        TARGET,
        passed,
        f"{spread}blackbox_exporter {bb_rate:,.0f} probes/s, {bb_cpu:.2f} CPU-ms/probe"
        f" (+{bb_driver:.2f} its driver; with it {(bb_cpu + bb_driver) / cpu:.2f}x);"
        f" client alone {_med(bare, 'rate'):,.0f}/s, {_med(bare, 'cpu_ms'):.2f} ms;"
        f" aiohttp alone {_med(aio, 'rate'):,.0f}/s, {_med(aio, 'cpu_ms'):.2f} ms;"
        f" nginx {_med(md, 'nginx_cpu_ms'):.3f} vs {_med(bb, 'nginx_cpu_ms'):.3f} ms;"
        f" {_med(md, 'connections'):,.0f} connections",
        {
            "checks": n,
            "concurrency": c,
            "mode": mode,
            "checks_per_s": rate,
            "cpu_ms_per_check": cpu,
            "ratio_per_cpu_s": ratio,
            "blackbox": bb,
            "maintd": md,
            "client": bare,
            "aiohttp": aio,
        },
    )


def _memory(samples: dict[tuple[str, int, str], list[dict[str, Any]]], n: int) -> Result:
    runs = [s for (system, _c, _m), found in samples.items() if system == "maintd" for s in found]
    rss = statistics.median(s["rss_mb"] for s in runs)
    return Result(
        "http-probe",
        "sqlite",
        f"RSS, {n:,} targets",
        f"RSS {rss:.0f} MB",
        f"< {RSS_TARGET_MB:g} MB RSS",
        rss < RSS_TARGET_MB,
        f"after running all {n:,} checks, median of {len(runs)} processes"
        f" ({min(s['rss_mb'] for s in runs):.0f}-{max(s['rss_mb'] for s in runs):.0f} MB);"
        f" before running {statistics.median(s['rss_before_mb'] for s in runs):.0f} MB,"
        f" peak {max(s['peak_mb'] for s in runs):.0f} MB;"
        f" plan activation {statistics.median(s['activate_s'] for s in runs):.2f} s",
        {"rss_mb": [s["rss_mb"] for s in runs], "peak_mb": [s["peak_mb"] for s in runs]},
    )
