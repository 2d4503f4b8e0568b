"""Benchmark: ``workers``: runs per minute through Celery workers against the local executor.

One ``maintd serve --role scheduler`` on a new PostgreSQL database, a plan of N ``tcp``
checks (connect to the machine's Redis, nothing sent: the check itself costs little, so the
figure is the executor's overhead) every minute, and a file clock. With ``--executor local``
the scheduler runs them; with ``celery`` 1 or 2 ``maintd worker --concurrency 8`` processes
do (the machine's Redis, a queue of the bench's own). After a warm-up round, each round moves
the clock a minute and times until all N new runs are recorded; runs/minute from the median.
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
from sqlalchemy import func, select

from bench.common import Result, Shape, median, scratch_store
from bench.services import free_port
from maintd.store.db import Store
from maintd.store.models import RunRow

TARGET = "figures only (issue 8: the scaling from 1 to 2 workers)"
CHECKS = 500
ROUNDS = 3
WAIT = 60.0
REDIS_DB = 13
T0 = datetime(2026, 11, 27, 1, 0, tzinfo=UTC)
CASES = (("local", 0), ("celery", 1), ("celery", 2))


def run(url: str, store: str, shape: Shape, quick: bool) -> list[Result]:
    checks = 100 if quick else CHECKS
    results = []
    for executor, workers in CASES:
        with scratch_store("postgresql") as fresh:  # a new database a case: no schedule rows left over
            per_minute, rounds = _case(fresh, executor, workers, checks)
        label = "local executor" if executor == "local" else f"{workers} worker(s)"
        results.append(
            Result(
                "workers",
                store,
                label,
                f"{per_minute:,.0f} runs/min",
                TARGET,
                per_minute > 0,  # measured: these are figures, not a target
                f"{checks} tcp checks a round, rounds (s): {', '.join(f'{r:.2f}' for r in rounds)}",
                {"runs_per_minute": per_minute, "rounds_s": rounds, "checks": checks},
            )
        )
    return results


def _case(url: str, executor: str, workers: int, checks: int) -> tuple[float, list[float]]:
    db = Store(url)
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
            MAINTD_DATABASE_URL=db.url,
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
                rounds = []
                for n in range(1, ROUNDS + 1):
                    at = time.monotonic()
                    _set_clock(clock, T0 + timedelta(minutes=n))
                    _wait_recorded(db, checks * (n + 1))
                    rounds.append(time.monotonic() - at)
            except TimeoutError as exc:
                logs = "".join(p.read_text(errors="replace")[-6000:] for p in sorted(tmp.glob("*.stderr")))
                raise TimeoutError(f"{exc}; {executor}, {workers} worker(s):\n{logs}") from exc
        finally:
            for p in procs:
                if p.poll() is None:
                    os.killpg(p.pid, signal.SIGKILL)
                p.wait(timeout=10)
            with redis.Redis(host="127.0.0.1", port=6379, db=REDIS_DB) as client:
                client.delete(queue)
            db.dispose()
    return checks / median(rounds) * 60, rounds


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
        time.sleep(0.01)
