"""Benchmark: ``workers``: runs per minute through Celery workers against the local executor.

One ``maintd serve --role scheduler`` on a new PostgreSQL database, a plan of N ``tcp``
checks (connect to the machine's Redis, nothing sent: the check itself costs little, so the
figure is the executor's overhead) every minute, and a file clock. With ``--executor local``
the scheduler runs them; with ``celery`` 1 or 2 ``maintd worker --concurrency 8`` processes
do (the machine's Redis, a queue of the bench's own). After a warm-up round, each round moves
the clock a minute and times until all N new runs are recorded; runs/minute from the median.

Beside the wall time, the CPU each side spent over the measured rounds, per run (utime+stime
from /proc): the scheduler, the workers, the PostgreSQL backends of the bench's database, and
Redis (its INFO counters: machine-wide, but nothing else uses it much). On a shared machine
the CPU is the figure to compare; ``ceiling`` is what 2 cores would do at that CPU per run.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import redis
from sqlalchemy import func, select, text

from bench.common import Result, Shape, median, scratch_store
from bench.services import free_port
from maintd.store.db import Store
from maintd.store.models import RunRow

TARGET = "figures only (issue 8: the scaling from 1 to 2 workers)"
CHECKS = 2000
CORES = 2
BENCH_APP = "maintd-bench"
POLL = 0.02  # seconds between the bench's counts of recorded runs
ROUNDS = 3
WAIT = 60.0
REDIS_DB = 13
T0 = datetime(2026, 11, 27, 1, 0, tzinfo=UTC)
CASES = (("local", 0), ("celery", 1), ("celery", 2))


def run(url: str, store: str, shape: Shape, quick: bool) -> list[Result]:
    checks = 200 if quick else CHECKS
    results = []
    for executor, workers in CASES:
        with scratch_store("postgresql") as fresh:  # a new database a case: no schedule rows left over
            per_minute, rounds, cpu = _case(fresh, executor, workers, checks)
        label = "local executor" if executor == "local" else f"{workers} worker(s)"
        per_run = {k: v / (checks * ROUNDS) * 1000 for k, v in cpu.items()}  # ms of CPU a run
        total = sum(per_run.values())
        ceiling = CORES * 60_000 / total if total else 0.0
        spent = ", ".join(f"{k} {v:.3f}" for k, v in per_run.items())
        results.append(
            Result(
                "workers",
                store,
                label,
                f"{per_minute:,.0f} runs/min",
                TARGET,
                per_minute > 0,  # measured: these are figures, not a target
                f"{checks} tcp checks a round, rounds (s): {', '.join(f'{r:.2f}' for r in rounds)}; "
                f"CPU ms a run: {spent}, total {total:.3f} "
                f"(ceiling {ceiling:,.0f} runs/min on {CORES} cores)",
                {
                    "runs_per_minute": per_minute,
                    "rounds_s": rounds,
                    "checks": checks,
                    "cpu_ms_per_run": per_run,
                    "cpu_ceiling_per_minute": ceiling,
                },
            )
        )
    return results


def _case(url: str, executor: str, workers: int, checks: int) -> tuple[float, list[float], dict[str, float]]:
    db = Store(f"{url}?application_name={BENCH_APP}")  # its own backends are left out of the CPU
    db.upgrade()
    queue = f"maintd-bench-{uuid.uuid4().hex[:8]}"
    procs: list[subprocess.Popen[bytes]] = []
    with tempfile.TemporaryDirectory(prefix="maintd-bench-workers-") as tmp_:
        tmp = Path(tmp_)
        clock = tmp / "clock"
        _set_clock(clock, T0)
        plan = tmp / "plan.yaml"
        plan.write_text(_plan(checks))
        env = {k: v for k, v in os.environ.items() if not k.startswith("MAINTD_")}
        env.update(
            MAINTD_DATABASE_URL=url,
            MAINTD_CLOCK=f"file:{clock}",
            MAINTD_EXECUTOR=executor,
            MAINTD_BROKER_URL=f"redis://127.0.0.1:6379/{REDIS_DB}",
            MAINTD_QUEUE=queue,
            MAINTD_LOG_LEVEL="warning",
            MAINTD_STATE_DIR=str(tmp / "state"),
        )
        try:
            procs.append(_start(["serve", "--role", "scheduler", "--plan", str(plan)], env, free_port(), tmp))
            procs += [_start(["worker", "--concurrency", "8"], env, 0, tmp) for _ in range(workers)]
            try:
                _wait_recorded(db, checks)  # warm-up: start, plan sync, the first round
                before = _cpu(db, procs)
                rounds = []
                for n in range(1, ROUNDS + 1):
                    at = time.monotonic()
                    _set_clock(clock, T0 + timedelta(minutes=n))
                    _wait_recorded(db, checks * (n + 1))
                    rounds.append(time.monotonic() - at)
                after = _cpu(db, procs)
            except TimeoutError as exc:
                logs = "".join(p.read_text(errors="replace")[-6000:] for p in sorted(tmp.glob("*.stderr")))
                raise TimeoutError(f"{exc}; {executor}, {workers} worker(s):\n{logs}") from exc
        finally:
            for p in procs:
                if p.poll() is None:
                    os.killpg(p.pid, signal.SIGKILL)
                p.wait(timeout=10)
            with redis.Redis(host="127.0.0.1", port=6379, db=REDIS_DB) as client:
                # The queue and kombu's bindings for it (they were left behind, one pair a case).
                client.delete(queue, f"_kombu.binding.{queue}", f"_kombu.binding_permanent.{queue}")
            db.dispose()
    return checks / median(rounds) * 60, rounds, _spent(before, after)


def _cpu(db: Store, procs: list[subprocess.Popen[bytes]]) -> dict[str, float]:
    """CPU seconds so far: each process of the case, each PostgreSQL backend of its database, Redis."""
    seen = {"scheduler": _proc_cpu(procs[0].pid)}
    seen.update({f"worker{i}": _proc_cpu(p.pid) for i, p in enumerate(procs[1:], 1)})
    with db.read() as s:
        pids = s.scalars(
            select(text("pid"))
            .select_from(text("pg_stat_activity"))
            .where(text("datname = current_database()"))
        ).all()
    seen.update({f"pg:{pid}": _proc_cpu(int(pid)) for pid in pids})
    with redis.Redis(host="127.0.0.1", port=6379, db=REDIS_DB) as client:
        info = client.info("cpu")
    seen["redis"] = float(info["used_cpu_user"]) + float(info["used_cpu_sys"])
    return seen


def _spent(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    """CPU seconds between two readings by side; a backend that started meanwhile counts whole."""
    sides: dict[str, float] = {}
    for key, value in after.items():
        side = "workers" if key.startswith("worker") else key.split(":")[0]
        side = {"pg": "postgresql"}.get(side, side)
        sides[side] = sides.get(side, 0.0) + value - before.get(key, 0.0)
    return sides


def _proc_cpu(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _plan(checks: int) -> str:
    targets = "\n".join(f"  - {{name: t{i}, kind: host, labels: {{b: x}}}}" for i in range(checks))
    return (
        f"targets:\n{targets}\ntasks:\n  - name: port\n    kind: tcp\n    targets: {{labels: {{b: x}}}}\n"
        "    schedule: {every: 1m}\n    params: {host: 127.0.0.1, port: 6379}\n"
    )


def _start(args: list[str], env: dict[str, str], port: int, tmp: Path) -> subprocess.Popen[bytes]:
    with open(tmp / f"{args[0]}-{uuid.uuid4().hex[:6]}.stderr", "wb") as err:
        return subprocess.Popen(
            [sys.executable, "-m", "maintd", *args],
            env={**env, "MAINTD_PORT": str(port)},
            stdin=subprocess.DEVNULL,
            stdout=err,
            stderr=err,
            start_new_session=True,
        )


def _set_clock(path: Path, when: datetime) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(when.isoformat())
    os.replace(tmp, path)


def _wait_recorded(db: Store, n: int) -> None:
    deadline = time.monotonic() + WAIT
    stmt = select(func.count()).select_from(RunRow).where(RunRow.state == "finished")
    while True:
        with db.read() as s:
            if (s.scalar(stmt) or 0) >= n:
                return
        if time.monotonic() > deadline:
            raise TimeoutError(f"gave up after {WAIT:.0f}s waiting for {n} recorded runs")
        time.sleep(POLL)
