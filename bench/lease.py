"""Benchmark: ``lease-takeover``: how long a scheduler pair is without an active scheduler.

Two ``maintd serve --role scheduler`` processes on a new PostgreSQL database (an empty plan,
the default lease timeout of 15 s). Once one holds the lease and the other is a ready
standby, the holder is SIGKILLed, at a random point of the standby's 0.5 s cycle of tries;
measured from the kill to the standby holding the lease (the row's epoch moved) and to its
engine started (``engine.started``: recovered, plan synced, ticking). Five rounds, medians.
Then one round of SIGSTOP with a 2 s lease timeout: there the takeover waits for the
expiry, by design.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from sqlalchemy import text

from bench.common import Result, Shape, median
from bench.services import free_port
from maintd.lease import POLL, SCHEDULER, TABLE
from maintd.store.db import Store

TARGET = "SIGKILL: standby scheduling < 15 s (the lease timeout)"
ROUNDS = 5
WAIT = 60.0
PAUSE_TTL = 2.0
T = TypeVar("T")
Proc = tuple[subprocess.Popen[bytes], int]  # a process and its health port


def run(url: str, store: str, shape: Shape, quick: bool) -> Result:
    db = Store(url)
    db.upgrade()  # once, before two processes would both migrate a new database
    try:
        with tempfile.TemporaryDirectory(prefix="maintd-bench-lease-") as tmp:
            plan = Path(tmp) / "plan.yaml"
            plan.write_text("targets: []\ntasks: []\n")
            kills = [_round(db, plan, Path(tmp), ttl=15.0, sig=signal.SIGKILL) for _ in range(ROUNDS)]
            paused = _round(db, plan, Path(tmp), ttl=PAUSE_TTL, sig=signal.SIGSTOP)
    finally:
        db.dispose()
    lease_s = median([k[0] for k in kills])
    started_s = median([k[1] for k in kills])
    return Result(
        "lease-takeover",
        store,
        "-",
        f"{started_s:.2f} s to scheduling, {lease_s:.2f} s to the lease (median of {ROUNDS})",
        TARGET,
        started_s < 15.0,
        f"SIGKILL rounds (lease, scheduling): {', '.join(f'{a:.2f}/{b:.2f}' for a, b in kills)}; "
        f"SIGSTOP with a {PAUSE_TTL:.0f} s timeout: {paused[0]:.2f} s to the lease, "
        f"{paused[1]:.2f} s to scheduling",
        {"kill_lease_s": [k[0] for k in kills], "kill_started_s": [k[1] for k in kills], "stop": paused},
    )


def _round(db: Store, plan: Path, tmp: Path, *, ttl: float, sig: signal.Signals) -> tuple[float, float]:
    """Start a pair, kill (or pause) the holder; seconds to the new lease and to its engine started."""
    with db.write() as s:  # the first keeper creates the table
        if s.scalar(text("SELECT to_regclass(:t) IS NOT NULL"), {"t": TABLE}):
            s.execute(text(f"DELETE FROM {TABLE} WHERE name = :n"), {"n": SCHEDULER})
    procs = [_serve(db, plan, tmp, ttl, n) for n in range(2)]
    try:
        holder_pid, epoch = _wait("a holder", lambda: _holder(db))
        (holder,) = [p for p, _ in procs if p.pid == holder_pid]
        (standby_port,) = [port for p, port in procs if p.pid != holder_pid]
        _wait("the standby's health port", lambda: _healthy(standby_port))
        started = len(_started(db))
        # The standby's first try was when its port opened: kill at a random point of its cycle.
        time.sleep(random.uniform(0, POLL))
        at = time.monotonic()
        holder.send_signal(sig)
        _wait("the takeover", lambda: (_holder(db) or (0, 0))[1] > epoch)
        lease_s = time.monotonic() - at
        _wait("the new holder's engine", lambda: len(_started(db)) > started)
        return lease_s, time.monotonic() - at
    finally:
        for p, _ in procs:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)
            p.wait(timeout=10)


def _serve(db: Store, plan: Path, tmp: Path, ttl: float, n: int) -> Proc:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAINTD_")}
    port = free_port()
    env.update(
        MAINTD_DATABASE_URL=db.url,
        MAINTD_ROLE="scheduler",
        MAINTD_LEASE_TTL=str(ttl),
        MAINTD_PORT=str(port),
        MAINTD_STATE_DIR=str(tmp / f"state-{n}"),
        MAINTD_LOG_LEVEL="warning",
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "maintd", "serve", "--plan", str(plan)],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    return proc, port


def _healthy(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as r:
            return bool(r.status == 200)
    except OSError:
        return False


def _holder(db: Store) -> tuple[int, int] | None:
    with db.read() as s:
        if not s.scalar(text("SELECT to_regclass(:t) IS NOT NULL"), {"t": TABLE}):
            return None
        row = s.execute(text(f"SELECT holder, epoch FROM {TABLE} WHERE name = :n"), {"n": SCHEDULER}).first()
    return (int(str(row[0]).split(":")[1]), int(row[1])) if row else None


def _started(db: Store) -> list[int]:
    with db.read() as s:
        return list(s.scalars(text("SELECT id FROM events WHERE kind = 'engine.started'")))


def _wait(what: str, probe: Callable[[], T | None]) -> T:
    deadline = time.monotonic() + WAIT
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"gave up after {WAIT:.0f}s waiting for {what}")
        time.sleep(0.005)
