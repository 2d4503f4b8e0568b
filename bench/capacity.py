"""Benchmark ``capacity``: projections for 1,000 series of a year of daily points.

Each series is a year of daily values (365 points), made deterministically: a third grow in a
straight line with noise (the linear model is chosen), a third add a weekly pattern (Holt-Winters
with a season is chosen), a third are flat with noise. Each goes through ``forecast`` as a review
does: resampling, both models fitted on 80 % and judged on the held-out 20 %, the chosen model's
365-day path with its 95 % interval (OLS, or 200 simulated paths), the 3/6/12-month projections
and the day the limit is reached. Not timed: reading the runs (the store's cost, not the models'),
and importing numpy and statsmodels (reported on its own: a review pays it once).
The figure is the wall time for all series, with the CPU time (on a busy machine it says more)
and the mean and p99 wall time per series by model chosen.

    python -m bench --only capacity        # --quick: 100 series
"""

from __future__ import annotations

import math
import random
import subprocess
import sys
import time
from collections import defaultdict
from datetime import timedelta

from bench.common import T0, Result, Shape, percentile
from maintd.capacity.forecast import Settings, forecast
from maintd.capacity.model import SeriesKey
from maintd.capacity.series import Series

SERIES, QUICK_SERIES = 1_000, 100
DAYS = 365
BUDGET_S = 300.0  # 1,000 series in five minutes: a nightly review of a large estate on one core
TARGET = f"< {BUDGET_S:.0f} s for {SERIES:,} series"


def make(i: int) -> Series:
    rnd = random.Random(i)
    shape = ("linear", "weekly", "flat")[i % 3]
    base, slope = rnd.uniform(100, 1000), rnd.uniform(0.1, 2.0)
    values = []
    for d in range(DAYS):
        noise = rnd.gauss(0, base * 0.002)
        if shape == "linear":
            values.append(base + slope * d + noise)
        elif shape == "weekly":
            values.append(base + slope * d + base * 0.05 * math.sin(2 * math.pi * d / 7) + noise)
        else:
            values.append(base + noise)
    start = T0 - timedelta(days=DAYS)
    points = [(start + timedelta(days=d), v) for d, v in enumerate(values)]
    key = SeriesKey(task="bench", target=f"t{i}", metric="used_bytes")
    return Series(key, "bytes", points, limit=base * 2, limit_source="bench")


def import_seconds() -> float:
    code = "import time; t=time.perf_counter(); import statsmodels.api, statsmodels.tsa.holtwinters; "
    code += "print(time.perf_counter()-t)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return float(done.stdout)


def run(url: str, store_kind: str, shape: Shape, quick: bool) -> Result:
    count = QUICK_SERIES if quick else SERIES
    imported = import_seconds()
    series = [make(i) for i in range(count)]
    settings = Settings()
    forecast(make(0), settings)  # warm: imports and first-call caches are not the per-series cost
    per_model: defaultdict[str, list[float]] = defaultdict(list)
    started, cpu = time.perf_counter(), time.process_time()
    for s in series:
        t = time.perf_counter()
        f = forecast(s, settings)
        per_model[f.chosen or "none"].append(time.perf_counter() - t)
    total, cpu = time.perf_counter() - started, time.process_time() - cpu
    budget = BUDGET_S * count / SERIES
    models = ", ".join(
        f"{name} x{len(times)}: mean {1000 * sum(times) / len(times):.0f} ms, "
        f"p99 {1000 * percentile(times, 99):.0f} ms"
        for name, times in sorted(per_model.items())
    )
    return Result(
        "capacity",
        store_kind,
        "-",
        f"{total:.1f} s for {count:,} series",
        TARGET,
        total < budget,
        f"CPU {cpu:.1f} s; {models}; import numpy+statsmodels {imported:.2f} s (once)",
        {"series": count, "total_s": round(total, 2), "cpu_s": round(cpu, 2), "import_s": round(imported, 2),
         **{f"{k}_n": len(v) for k, v in per_model.items()}},
    )  # fmt: skip
