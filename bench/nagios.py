"""Benchmark 5: ``nagios-overhead``: maintd's own CPU per plugin run, on top of the plugin.

For each plugin (Monitoring Plugins' ``check_dummy 0``, and ``check_http`` against
a local nginx, see bench/services.py), in fresh child processes
(``python -m bench.nagioschild``):

- **bare**: the plugin run N times, one after the other, by ``subprocess.run``
  (fork/exec, output captured): the parent's CPU plus the plugins' (getrusage
  RUSAGE_SELF and RUSAGE_CHILDREN, before/after).
- **maintd**: a plan of one ``nagios`` task on N targets, all due at once,
  ``runner.concurrency`` 16, run by the engine's own loop on a new SQLite database
  until every result is stored: maintd's own CPU (RUSAGE_SELF: every thread,
  claiming, spawning, reading, parsing, recording) and the plugins' (RUSAGE_CHILDREN).

The overhead is maintd's CPU per run (its own plus the plugin's) minus the bare
loop's (parent plus plugin): what running the plugin through maintd costs beyond
what running it at all costs. Every run must end OK.
"""

from __future__ import annotations

import statistics
from typing import Any

from bench import services
from bench.common import Result, Shape, child_json, scratch_store

TARGET_MS = 2.0
TARGET = f"overhead < {TARGET_MS:g} CPU-ms/run"
CONCURRENCY = 16


def run(url: str, store_kind: str, shape: Shape, quick: bool) -> list[Result]:
    n = 300 if quick else 2_000
    repeats = 1 if quick else 3
    services.find_program(
        (f"{services.PLUGIN_DIR}/check_dummy",), services.PACKAGES["check_dummy, check_http"]
    )
    results = []
    with services.nginx() as web:
        plugins = {
            "check_dummy": ["0", "bench"],
            "check_http": ["-H", "127.0.0.1", "-p", str(web.port), "-u", services.PATH],
        }
        for plugin, args in plugins.items():
            bare, maintd = [], []
            for _ in range(repeats):
                bare.append(_sample("bare", [str(n), "--", f"{services.PLUGIN_DIR}/{plugin}", *args]))
                with scratch_store("sqlite") as db:
                    maintd.append(_sample("maintd", [db, str(n), str(CONCURRENCY), "--", plugin, *args]))
            results.append(_result(plugin, args, n, bare, maintd))
    return results


def _sample(mode: str, args: list[str]) -> dict[str, Any]:
    sample = child_json("bench.nagioschild", [mode, *args])
    runs = sample["runs"]
    if sample["ok"] != runs or not runs:
        raise AssertionError(f"{mode}: {sample['ok']} of {runs} plugin runs ok: {sample}")
    sample["self_ms"] = sample["self_cpu_s"] / runs * 1000
    sample["children_ms"] = sample["children_cpu_s"] / runs * 1000
    sample["total_ms"] = sample["self_ms"] + sample["children_ms"]
    sample["rate"] = runs / sample["wall_s"]
    return sample


def _med(samples: list[dict[str, Any]], key: str) -> float:
    return float(statistics.median(s[key] for s in samples))


def _result(
    plugin: str, args: list[str], n: int, bare: list[dict[str, Any]], maintd: list[dict[str, Any]]
) -> Result:
    overheads = sorted(m["total_ms"] - b["total_ms"] for b, m in zip(bare, maintd, strict=True))
    overhead = statistics.median(overheads)
    spread = (
        f"median of {len(overheads)} ({overheads[0]:.2f}-{overheads[-1]:.2f}); " if len(overheads) > 1 else ""
    )
    return Result(
        "nagios-overhead",
        "sqlite",
        f"{plugin}, {n:,} runs",
        f"+{overhead:.2f} CPU-ms/run",
        TARGET,
        overhead < TARGET_MS,
        f"{spread}bare fork/exec {_med(bare, 'total_ms'):.2f} ms/run (parent {_med(bare, 'self_ms'):.2f}"
        f" + plugin {_med(bare, 'children_ms'):.2f}), {_med(bare, 'rate'):,.0f} runs/s;"
        f" maintd {_med(maintd, 'total_ms'):.2f} ms/run (maintd {_med(maintd, 'self_ms'):.2f}"
        f" + plugin {_med(maintd, 'children_ms'):.2f}), {_med(maintd, 'rate'):,.0f} runs/s"
        f" at concurrency {CONCURRENCY}",
        {
            "plugin": plugin,
            "args": args,
            "runs": n,
            "overhead_ms": overhead,
            "maintd_self_ms": _med(maintd, "self_ms"),
            "bare": bare,
            "maintd": maintd,
        },
    )
