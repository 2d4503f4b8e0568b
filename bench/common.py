"""What every benchmark shares: a no-op task kind, plan shapes, scratch stores, machine facts."""

from __future__ import annotations

import contextlib
import json
import os
import platform
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from maintd.checks.base import CheckResult, Kind, RunContext, Status
from maintd.plan.loader import LoadedPlan, plan_from_document
from maintd.registry import Registry
from maintd.store.db import Store, normalise_url

# A Friday 01:00 UTC, as in the tests.
T0 = datetime(2026, 11, 27, 1, 0, tzinfo=UTC)
PG_ADMIN_URL = os.environ.get("MAINTD_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
STORES = ("sqlite", "postgresql")


# -- the bench-only task kind -------------------------------------------------


class NoopConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Noop:
    """Returns OK at once: what is left is the engine's own cost."""

    async def run(self, ctx: RunContext) -> CheckResult:
        return CheckResult(Status.ok)


NOOP = Kind(name="noop", config=NoopConfig, build=lambda _config: Noop(), summary="bench: ok at once")


def registry() -> Registry:
    reg = Registry()
    reg.register(NOOP)
    return reg


# -- plan shapes ----------------------------------------------------------------


@dataclass(frozen=True)
class Shape:
    """How the schedule rows (one per task and target) are made."""

    name: str
    tasks: int
    targets: int
    per_task: int  # targets each task runs on

    @property
    def rows(self) -> int:
        return self.tasks * self.per_task

    def describe(self) -> str:
        if self.per_task == self.targets:
            return f"{self.tasks:,} tasks x {self.targets:,} targets (label selector)"
        return f"{self.tasks:,} tasks x {self.per_task} target each ({self.targets:,} targets, by name)"


def shapes(quick: bool) -> dict[str, Shape]:
    """``grid``: few tasks on many targets; ``flat``: one task per target. Both give N rows."""
    n = 1_000 if quick else 10_000
    return {
        "grid": Shape("grid", tasks=n // 100, targets=100, per_task=100),
        "flat": Shape("flat", tasks=n, targets=n, per_task=1),
    }


def plan_document(shape: Shape, schedule: dict[str, Any]) -> dict[str, Any]:
    """A plan of ``shape`` whose tasks are all ``noop`` on ``schedule``."""
    if shape.per_task == shape.targets:
        targets = [
            {"name": f"t{i:05d}", "kind": "host", "labels": {"bench": "yes"}} for i in range(shape.targets)
        ]
        selector: Any = {"labels": {"bench": "yes"}}
        tasks = [
            {"name": f"k{i:05d}", "kind": "noop", "targets": selector, "schedule": schedule}
            for i in range(shape.tasks)
        ]
    else:
        assert shape.per_task == 1 and shape.tasks == shape.targets
        targets = [{"name": f"t{i:05d}", "kind": "host"} for i in range(shape.targets)]
        tasks = [
            {"name": f"k{i:05d}", "kind": "noop", "targets": [f"t{i:05d}"], "schedule": schedule}
            for i in range(shape.tasks)
        ]
    return {"targets": targets, "tasks": tasks}


def load(shape: Shape, schedule: dict[str, Any], reg: Registry) -> LoadedPlan:
    return plan_from_document(plan_document(shape, schedule), reg, source=f"<bench {shape.name}>")


# Daily at 03:00 UTC: two hours after T0, so nothing is due while the tick benchmark runs.
NOT_DUE = {"cron": "0 3 * * *"}
# An interval without a window starts at once: every row is due at T0.
DUE_NOW = {"every": "1h"}


# -- scratch stores -------------------------------------------------------------


@contextlib.contextmanager
def scratch_store(kind: str, pg_admin_url: str = PG_ADMIN_URL) -> Iterator[str]:
    """The URL of a new, empty database (schema not yet created); removed afterwards."""
    if kind == "sqlite":
        with tempfile.TemporaryDirectory(prefix="maintd-bench-") as tmp:
            yield f"sqlite:///{Path(tmp) / 'bench.db'}"
        return
    if kind != "postgresql":
        raise ValueError(f"unknown store {kind!r}: expected one of {', '.join(STORES)}")
    from sqlalchemy import create_engine, text

    admin_url = normalise_url(pg_admin_url)
    name = f"maintd_bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        try:
            yield admin_url.rsplit("/", 1)[0] + f"/{name}"
        finally:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()


def open_store(url: str) -> Store:
    store = Store(url)
    store.upgrade()
    return store


# -- results --------------------------------------------------------------------


@dataclass
class Result:
    benchmark: str
    store: str
    shape: str
    result: str  # the figure the target applies to
    target: str
    passed: bool | None  # None: could not be measured
    note: str = ""  # the figures around it
    details: dict[str, Any] = field(default_factory=dict)


def percentile(values: list[float], pct: float) -> float:
    """Nearest-rank percentile (``pct`` in 0..100)."""
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * pct // 100))
    return ordered[int(rank) - 1]


def median(values: list[float]) -> float:
    return statistics.median(values)


ROOT = Path(__file__).resolve().parent.parent


def child_json(module: str, args: list[str], timeout: float = 900) -> dict[str, Any]:
    """Run ``python -m MODULE ARGS`` from the repository root; its last stdout line, as JSON."""
    cmd = [sys.executable, "-m", module, *args]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"{module} failed ({proc.returncode}): {proc.stderr.strip()[-2000:]}")
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


# -- the machine ------------------------------------------------------------------


def machine_info(stores: list[str], pg_admin_url: str = PG_ADMIN_URL) -> dict[str, str]:
    info = {
        "cpu": _cpu_model(),
        "cores": _cores(),
        "ram": _ram(),
        "os": f"{platform.system()} {platform.release()}",
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "date": datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"),
        "packages": ", ".join(
            f"{p} {_version(p)}" for p in ("maintd", "SQLAlchemy", "psycopg", "pydantic", "alembic")
        ),
        "sqlite": sqlite3.sqlite_version,
    }
    if "postgresql" in stores:
        info["postgresql"] = _pg_version(pg_admin_url)
    return info


def _cpu_model() -> str:
    """The model name, plus family/model/MHz (a VM often shows only 'AMD EPYC')."""
    fields: dict[str, str] = {}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if not key.strip() and fields:
                break  # the first processor is enough
            fields.setdefault(key.strip(), value.strip())
    except OSError:
        return platform.processor() or "unknown"
    extra = []
    if "cpu family" in fields:
        extra.append(f"family {fields['cpu family']} model {fields.get('model', '?')}")
    if "cpu MHz" in fields:
        extra.append(f"{float(fields['cpu MHz']):.0f} MHz")
    if "hypervisor" in fields.get("flags", "").split():
        extra.append("virtual machine")
    name = fields.get("model name", platform.processor() or "unknown")
    return f"{name} ({', '.join(extra)})" if extra else name


def _cores() -> str:
    logical = os.cpu_count() or 0
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = logical
    return f"{usable} usable / {logical} logical"


def _ram() -> str:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    except OSError:
        pass
    return "unknown"


def _version(package: str) -> str:
    try:
        return version(package)
    except PackageNotFoundError:
        return "?"


def _pg_version(admin_url: str) -> str:
    try:
        from sqlalchemy import create_engine, text

        engine = create_engine(normalise_url(admin_url))
        try:
            with engine.connect() as conn:
                full = str(conn.execute(text("SHOW server_version")).scalar())
        finally:
            engine.dispose()
        return full.split()[0]
    except Exception as exc:  # reported, not fatal: the PostgreSQL rows say why they failed
        return f"unreachable ({type(exc).__name__})"
