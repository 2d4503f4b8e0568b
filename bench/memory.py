"""Benchmark 3: resident memory of a process holding an N-row plan.

Measured in fresh child processes (``python -m bench.memchild``) so that the
benchmark's own memory does not count. The child imports what ``maintd serve``
imports, opens and migrates the store and records its RSS (the baseline); then
loads the plan, syncs it (``Engine.activate``) and ticks, and records RSS again
(the figure the target applies to) and the peak (VmHWM). Finally it makes every
row due, claims and runs them all, and records RSS once more (reported, no target).

How much freed memory the C allocator keeps varies from process to process (by up
to ~20 MB here), so a full run takes the median of three children.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text

from bench.common import Result, Shape
from maintd.store.db import normalise_url
from maintd.store.models import Base

TARGET_MB = 150.0
ROOT = Path(__file__).resolve().parent.parent


def run(url: str, store_kind: str, shape: Shape, quick: bool) -> Result:
    samples = []
    for i in range(1 if quick else 3):
        if i:
            _empty(url)
        samples.append(_child(url, shape, quick))
    m: dict[str, Any] = {
        key: statistics.median(s[key] for s in samples) for key in samples[0] if key.endswith("_mb")
    }
    m["rows"] = shape.rows
    m["after_mb_samples"] = [s["after_mb"] for s in samples]
    after = m["after_mb"]
    spread = min(m["after_mb_samples"]), max(m["after_mb_samples"])
    runs = f"median of {len(samples)}: {spread[0]:.0f}-{spread[1]:.0f} MB; " if len(samples) > 1 else ""
    return Result(
        "memory",
        store_kind,
        shape.name,
        f"RSS {after:.0f} MB",
        f"< {TARGET_MB:g} MB RSS",
        after < TARGET_MB,
        f"{runs}baseline {m['baseline_mb']:.0f} MB (+{after - m['baseline_mb']:.0f}),"
        f" peak {m['peak_mb']:.0f} MB; after running all {m['after_dispatch_mb']:.0f} MB",
        m,
    )


def _child(url: str, shape: Shape, quick: bool) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "bench.memchild", url, shape.name, *(["--quick"] if quick else [])]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=900, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"memory child failed ({proc.returncode}): {proc.stderr.strip()[-2000:]}")
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def _empty(url: str) -> None:
    """Back to a database without tables, so every child syncs the plan from scratch."""
    engine = create_engine(normalise_url(url))
    try:
        Base.metadata.drop_all(engine)
        with engine.begin() as conn:
            conn.execute(text("DROP TABLE IF EXISTS alembic_version"))
    finally:
        engine.dispose()
