"""The child process of the memory benchmark; prints one JSON line. Not for direct use."""

from __future__ import annotations

import sys
from pathlib import Path


def status_mb(field: str) -> float:
    """A VmRSS/VmHWM-style line of /proc/self/status, in MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field} in /proc/self/status")


def main(argv: list[str]) -> None:
    interpreter_mb = status_mb("VmRSS")  # before any import of maintd
    import asyncio
    import gc
    import json
    from datetime import timedelta

    import maintd.server  # noqa: F401  (what a serving process has imported)
    from bench.common import NOT_DUE, T0, load, registry, shapes
    from maintd.clock import FakeClock
    from maintd.engine import IDLE_WAKE, Engine
    from maintd.settings import Settings
    from maintd.store.db import Store

    url, shape_name = argv[0], argv[1]
    shape = shapes("--quick" in argv)[shape_name]
    reg = registry()
    store = Store(url)
    store.upgrade_apart()  # as maintd serve migrates a new database: in a child process
    clock = FakeClock(T0)
    engine = Engine(Settings(database_url=url), store=store, registry=reg, clock=clock)
    gc.collect()
    baseline_mb = status_mb("VmRSS")

    loaded = load(shape, NOT_DUE, reg)
    engine.activate(loaded, "bench", "bench")
    for _ in range(3):
        orders, _next = engine.tick(clock.advance(IDLE_WAKE))
        assert not orders
    gc.collect()
    after_mb = status_mb("VmRSS")
    peak_mb = status_mb("VmHWM")

    async def dispatch_all() -> int:
        clock.set(T0.replace(hour=3) + timedelta(seconds=1))  # NOT_DUE's 03:00 has come: all due
        total = 0
        while True:
            batch, _ = engine.tick(clock.now())
            if not batch:
                break
            total += len(batch)
            await engine.runner.run_all(batch)
        await engine.runner.stop(1.0)
        return total

    dispatched = asyncio.run(dispatch_all())
    assert dispatched == shape.rows, (dispatched, shape.rows)
    gc.collect()
    result = {
        "rows": shape.rows,
        "interpreter_mb": interpreter_mb,
        "baseline_mb": baseline_mb,
        "after_mb": after_mb,
        "peak_mb": peak_mb,
        "after_dispatch_mb": status_mb("VmRSS"),
        "peak_dispatch_mb": status_mb("VmHWM"),
    }
    store.dispose()
    print(json.dumps(result))


if __name__ == "__main__":
    main(sys.argv[1:])
