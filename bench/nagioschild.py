"""The child processes of the nagios-overhead benchmark; each prints one JSON line. Not for direct use.

``bare N -- ARGV...``: run ARGV N times, one after the other, with ``subprocess.run``
  (output captured, LC_ALL=C): the least a caller of a plugin does.
``maintd DB_URL N CONCURRENCY -- PLUGIN ARG...``: a plan of one ``nagios`` task
  (plugin PLUGIN, args ARG...) on N targets, all due at once, run by the engine's
  own loop on DB_URL until every result is stored.

Both report their own CPU (getrusage RUSAGE_SELF: every thread) and their
children's (RUSAGE_CHILDREN: the plugins, counted as they are reaped) over the
measured interval, and how the runs ended. Loops are bounded by N and ``TIME_LIMIT``.
"""

from __future__ import annotations

import asyncio
import json
import os
import resource
import subprocess
import sys
import time
from collections import Counter
from typing import Any

TIME_LIMIT = 300.0


def usage() -> tuple[float, float]:
    """(own CPU seconds, CPU seconds of reaped children), user + system."""
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime, kids.ru_utime + kids.ru_stime


def run_bare(n: int, argv: list[str]) -> dict[str, Any]:
    env = {**os.environ, "LC_ALL": "C"}
    codes: Counter[int] = Counter()
    deadline = time.monotonic() + TIME_LIMIT
    own, kids = usage()
    wall = time.perf_counter()
    done = 0
    for _ in range(n):
        if time.monotonic() > deadline:
            break
        proc = subprocess.run(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=env,
            timeout=30,
        )
        codes[proc.returncode] += 1
        done += 1
    wall = time.perf_counter() - wall
    own_after, kids_after = usage()
    return {
        "runs": done,
        "wall_s": wall,
        "self_cpu_s": own_after - own,
        "children_cpu_s": kids_after - kids,
        "ok": codes[0],
        "exit_codes": {str(k): v for k, v in codes.items()},
        "sample_output": proc.stdout.decode(errors="replace")[:300],
    }


async def run_maintd(db_url: str, n: int, concurrency: int, plugin: str, args: list[str]) -> dict[str, Any]:
    from sqlalchemy import func, select

    import maintd.server  # noqa: F401  (what a serving process has imported)
    from bench.common import DUE_NOW, T0, open_store
    from maintd.clock import FakeClock
    from maintd.engine import Engine
    from maintd.plan.loader import plan_from_document
    from maintd.registry import Registry
    from maintd.settings import Settings
    from maintd.store.models import RunRow

    reg = Registry.default(plugins=False)
    document = {
        "runner": {"concurrency": concurrency},
        "targets": [
            {"name": f"h{i:05d}", "kind": "service", "labels": {"bench": "nagios"}} for i in range(n)
        ],
        "tasks": [
            {
                "name": "plugin",
                "kind": "nagios",
                "targets": {"labels": {"bench": "nagios"}},
                "schedule": DUE_NOW,
                "params": {"plugin": plugin, "args": args},
            }
        ],
    }
    store = open_store(db_url)
    try:
        clock = FakeClock(T0)
        engine = Engine(Settings(database_url=db_url), store=store, registry=reg, clock=clock)
        engine.activate(plan_from_document(document, reg, source="<bench nagios>"), "bench", "bench")
        counter = engine.metrics.runs

        def queued() -> float:
            return sum(s.value for m in counter.collect() for s in m.samples if s.name.endswith("_total"))

        deadline = time.monotonic() + TIME_LIMIT
        own, kids = usage()
        wall = time.perf_counter()
        engine.start()
        while queued() < n and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        await engine.runner.flush()
        wall = time.perf_counter() - wall
        own_after, kids_after = usage()
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
        "runs": sum(statuses.values()),
        "wall_s": wall,
        "self_cpu_s": own_after - own,
        "children_cpu_s": kids_after - kids,
        "ok": statuses.get("ok", 0),
        "statuses": statuses,
        "sample_output": sample,
    }


def main(argv: list[str]) -> None:
    split = argv.index("--")
    words, rest = argv[:split], argv[split + 1 :]
    if words[0] == "bare":
        result = run_bare(int(words[1]), rest)
    elif words[0] == "maintd":
        result = asyncio.run(run_maintd(words[1], int(words[2]), int(words[3]), rest[0], rest[1:]))
    else:
        raise SystemExit(f"unknown mode {words[0]!r}")
    print(json.dumps(result))


if __name__ == "__main__":
    main(sys.argv[1:])
