"""Benchmark 7: ``ingest``: 20,000 distinct alerts into maintd, side by side with Prometheus Alertmanager.

Each case starts its own server process and a load driver (``python -m bench.ingestchild``)
that sends N distinct alerts (distinct label sets) in bodies of 1, 10 or 100 alerts over
16 keep-alive connections, each connection sending its next body when the last is answered:

- **Alertmanager** (Debian's prometheus-alertmanager) with a null receiver, which keeps the
  alerts in memory only: ``POST /api/v2/alerts``.
- **maintd native**: ``maintd serve`` on a new database, ``POST /api/v1/alerts`` with a
  responder's API token (``maintd token create``).
- **maintd webhook**: the same server, Alertmanager's webhook (version 4) at
  ``/integrations/alertmanager/KEY`` (``maintd integration create --kind alertmanager``).
- **maintd intake native / webhook**: the same two bodies sent to ``maintd intake``, the light
  process that only validates and journals alerts, beside a ``maintd serve`` that drains the
  journal into the pipeline. The server figures are the intake's; the time the serving process
  took to drain everything after the last answer, and its CPU, are reported beside them.
- **maintd intake alone, native**: the intake with no ``maintd serve`` until the last answer,
  as while maintd serve is down or restarting: what the intake itself takes, like for like with
  Alertmanager, which makes no incidents. maintd serve is then started and drains the backlog;
  the time that took is reported beside.

maintd answers 2xx only after the alerts are committed (the synchronous routes: the alerts
and their incidents; the intake: the journal rows), so every accepted alert is durable; the
benchmark counts the stored alerts afterwards (for the intake, once the journal is drained).
maintd's ingest rate limit (100 requests/s per sender by default) is raised for the run:
``MAINTD_INGEST_RATE`` and ``MAINTD_INGEST_BURST`` are set to ``RATE_LIMIT``. Measured per
case: accepted alerts/s, p50/p99 request latency, the server's CPU seconds and RSS afterwards,
and the driver's CPU seconds (it shares the machine's cores with the server). A full run
repeats every case three times; the table shows medians.
"""

from __future__ import annotations

import contextlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import services
from bench.common import Result, Shape, child_json, scratch_store

BATCHES = (1, 10, 100)
CONNECTIONS = 16
ROUTES = {
    "native": "POST /api/v1/alerts",
    "webhook": "Alertmanager webhook",
    "intake-native": "maintd intake, POST /api/v1/alerts",
    "intake-webhook": "maintd intake, Alertmanager webhook",
    "intake-alone-native": "maintd intake alone (maintd serve after), POST /api/v1/alerts",
}
INTAKE = "intake-"  # the routes served by ``maintd intake`` carry this prefix
ALONE = "alone-"  # ... and then this one when maintd serve starts only after the last answer
DRAIN_TIMEOUT = 600.0  # seconds for ``maintd serve`` to drain the intake's journal
RATE_LIMIT = "1000000"  # requests/s and burst: far above what the benchmark sends
TARGET = ">= Alertmanager's alerts/s at this batch size, every alert committed before its 2xx"
RSS_TARGET = "RSS <= half of Alertmanager's after all alerts"
PLAN = "targets:\n  - {name: host000, kind: host}\ntasks: []\n"


@dataclass
class Maintd:
    url: str
    pid: int
    token: str
    key: str
    db_url: str
    intake_url: str = ""  # ``maintd intake`` beside the server, when asked for
    intake_pid: int = 0
    serve: Callable[[], None] | None = None  # starts ``maintd serve`` when it was asked for later


def run(url: str, store_kind: str, shape: Shape, quick: bool) -> list[Result]:
    n = 2_000 if quick else 20_000
    repeats = 1 if quick else 3
    samples: dict[tuple[str, int], list[dict[str, Any]]] = {}
    for _ in range(repeats):
        for batch in BATCHES:
            # Alertmanager beside each maintd case: both meet the same load from the other engineers.
            samples.setdefault(("alertmanager", batch), []).append(_alertmanager_case(n, batch))
            for route in ROUTES:
                samples.setdefault((route, batch), []).append(_maintd_case(store_kind, route, n, batch))
    results = [_compare(samples, store_kind, route, batch) for batch in BATCHES for route in ROUTES]
    results += [_memory(samples, store_kind, n, intake=intake) for intake in (False, True)]
    return results


def _alertmanager_case(n: int, batch: int) -> dict[str, Any]:
    with services.alertmanager() as am:
        url = f"http://127.0.0.1:{am.port}/api/v2/alerts"
        return _drive("alertmanager", url, n, batch, am.proc.pid)


def _maintd_case(store_kind: str, route: str, n: int, batch: int) -> dict[str, Any]:
    intake = route.startswith(INTAKE)
    alone = route.removeprefix(INTAKE).startswith(ALONE)
    body = route.removeprefix(INTAKE).removeprefix(ALONE)
    with (
        scratch_store(store_kind) as db_url,
        maintd_server(db_url, intake=intake, serve_later=alone) as server,
    ):
        url, pid = (server.intake_url, server.intake_pid) if intake else (server.url, server.pid)
        serve_cpu = services.cpu_seconds(server.pid) if server.pid else 0.0
        if body == "native":
            sample = _drive(body, f"{url}/api/v1/alerts", n, batch, pid, server.token)
        else:
            sample = _drive(body, f"{url}/integrations/alertmanager/{server.key}", n, batch, pid)
        if server.serve is not None:
            server.serve()  # only now: the backlog is drained from here
            sample["serve_later"] = True
            serve_cpu = services.cpu_seconds(server.pid)
        if intake:
            sample["drained_s"] = _drained(db_url, n)
            sample["serve_cpu_s"] = services.cpu_seconds(server.pid) - serve_cpu
        stored = _stored_alerts(db_url)
    if stored != n:
        raise AssertionError(f"maintd {route}: {stored} alerts stored, {n} accepted")
    return sample


def _drained(db_url: str, n: int) -> float:
    """Seconds from now until ``maintd serve`` has drained the journal into ``n`` stored alerts."""
    from sqlalchemy import func, select

    from maintd.store.db import Store
    from maintd.store.models import AlertIntakeRow, AlertRow

    store = Store(db_url)
    start = time.monotonic()
    try:
        while time.monotonic() - start < DRAIN_TIMEOUT:
            with store.read() as session:
                waiting = session.scalar(select(func.count()).select_from(AlertIntakeRow)) or 0
                stored = session.scalar(select(func.count()).select_from(AlertRow)) or 0
            if not waiting and stored >= n:
                return time.monotonic() - start
            time.sleep(0.05)  # polling a database another process fills: nothing to wait on instead
        raise AssertionError(f"the journal was not drained in {DRAIN_TIMEOUT:.0f} s ({waiting} rows left)")
    finally:
        store.dispose()


def _drive(route: str, url: str, n: int, batch: int, pid: int, auth: str = "") -> dict[str, Any]:
    args = [route, url, str(n), str(batch), str(CONNECTIONS), str(pid)] + ([auth] if auth else [])
    sample = child_json("bench.ingestchild", args)
    if sample["accepted"] != n:
        raise AssertionError(f"{route}: {sample['accepted']} of {n} alerts accepted: {sample['errors']}")
    return sample


def _stored_alerts(db_url: str) -> int:
    from sqlalchemy import func, select

    from maintd.store.db import Store
    from maintd.store.models import AlertRow

    store = Store(db_url)
    try:
        with store.read() as session:
            return session.scalar(select(func.count()).select_from(AlertRow)) or 0
    finally:
        store.dispose()


@contextlib.contextmanager
def maintd_server(
    db_url: str, plan: str = PLAN, *, intake: bool = False, serve_later: bool = False
) -> Iterator[Maintd]:
    """``maintd serve`` on ``db_url`` (migrated first), with a responder's token and an Alertmanager
    key; with ``intake``, a ``maintd intake`` beside it on the same database; with ``serve_later``,
    maintd serve only once ``Maintd.serve`` is called."""
    with prepared(db_url, plan) as (root, env, token, key), contextlib.ExitStack() as running:
        found = Maintd("", 0, token, key, db_url)

        def serve() -> None:
            port = services.free_port()
            server = running.enter_context(serving(root, env, port))
            found.url, found.pid, found.serve = f"http://127.0.0.1:{port}", server.proc.pid, None

        if serve_later:
            found.serve = serve
        else:
            serve()
        if intake:
            intake_port = services.free_port()
            taking = running.enter_context(serving(root, env, intake_port, command="intake"))
            found.intake_url, found.intake_pid = f"http://127.0.0.1:{intake_port}", taking.proc.pid
        yield found


@contextlib.contextmanager
def prepared(db_url: str, plan: str = PLAN) -> Iterator[tuple[Path, dict[str, str], str, str]]:
    """A directory with the plan, the servers' environment, ``db_url`` migrated, a responder's
    token and an Alertmanager integration key: what ``serving`` needs to start maintd."""
    with tempfile.TemporaryDirectory(prefix="maintd-bench-serve-") as tmp:
        root = Path(tmp)
        (root / "plan.yaml").write_text(plan)
        env = {
            **os.environ,
            "MAINTD_DATABASE_URL": db_url,
            "MAINTD_PLAN": str(root / "plan.yaml"),
            "MAINTD_STATE_DIR": str(root),
            "MAINTD_LOG_LEVEL": "warning",
            "MAINTD_INGEST_RATE": RATE_LIMIT,
            "MAINTD_INGEST_BURST": RATE_LIMIT,
        }

        def cli(*args: str) -> str:
            proc = subprocess.run([MAINTD, *args], env=env, capture_output=True, text=True, check=False)
            if proc.returncode != 0:
                raise RuntimeError(f"maintd {' '.join(args[:2])} failed: {proc.stderr.strip()[-1000:]}")
            return proc.stdout.strip().splitlines()[-1].strip()

        cli("db", "upgrade")
        token = cli("token", "create", "--name", "bench", "--role", "responder")
        key = cli("integration", "create", "--name", "bench-am", "--kind", "alertmanager")
        yield root, env, token, key


START_TIMEOUT = 90.0  # seconds for a server to answer /healthz
MAINTD = str(Path(sys.executable).with_name("maintd"))


@contextlib.contextmanager
def serving(
    root: Path, env: dict[str, str], port: int, *args: str, command: str = "serve"
) -> Iterator[services.Server]:
    """``maintd COMMAND ARGS`` (serve or intake) on ``port``, once its /healthz answers; then stopped."""
    with open(root / f"{command}-{port}.log", "wb") as log:
        proc = subprocess.Popen(
            [MAINTD, command, *args],
            env={**env, "MAINTD_PORT": str(port)},
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            cwd=root,
        )
    server = services.Server("maintd", port, proc, root)
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while True:  # services.wait_http gives up after 15 s; on a loaded machine imports alone take that
            try:
                services.wait_http(server, f"http://127.0.0.1:{port}/healthz")
                break
            except RuntimeError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise
        yield server
    finally:
        services.stop(proc)


# -- the table ------------------------------------------------------------------------------


def _med(samples: list[dict[str, Any]], key: str) -> float:
    return float(statistics.median(s[key] for s in samples))


def _spread(samples: list[dict[str, Any]]) -> str:
    if len(samples) < 2:
        return ""
    rates = sorted(s["rate"] for s in samples)
    return f"median of {len(samples)} ({rates[0]:,.0f}-{rates[-1]:,.0f}/s); "


def _figures(samples: list[dict[str, Any]]) -> str:
    figures = (
        f"p50 {_med(samples, 'p50_ms'):.1f} ms, p99 {_med(samples, 'p99_ms'):.1f} ms,"
        f" server CPU {_med(samples, 'server_cpu_s'):.1f} s, driver CPU {_med(samples, 'driver_cpu_s'):.1f} s"
    )
    if "drained_s" in samples[0]:
        later = samples[0].get("serve_later")
        since = "maintd serve started, after the last answer" if later else "the last answer"
        figures += (
            f", drained {_med(samples, 'drained_s'):.1f} s after {since}"
            f" (maintd serve CPU {_med(samples, 'serve_cpu_s'):.1f} s)"
        )
    return figures


def _compare(
    samples: dict[tuple[str, int], list[dict[str, Any]]], store_kind: str, route: str, batch: int
) -> Result:
    ours, theirs = samples[(route, batch)], samples[("alertmanager", batch)]
    rate, their_rate = _med(ours, "rate"), _med(theirs, "rate")
    return Result(
        "ingest",
        store_kind,
        f"{ROUTES[route]}, batch {batch}",
        f"{rate:,.0f} alerts/s = {rate / their_rate:.2f}x",
        TARGET,
        rate >= their_rate,
        f"{_spread(ours)}{_figures(ours)}; Alertmanager {_spread(theirs)}{their_rate:,.0f} alerts/s,"
        f" {_figures(theirs)}",
        {"route": route, "batch": batch, "alerts_per_s": rate, "maintd": ours, "alertmanager": theirs},
    )


def _memory(
    samples: dict[tuple[str, int], list[dict[str, Any]]], store_kind: str, n: int, *, intake: bool
) -> Result:
    """The RSS of the process that took the alerts: ``maintd serve``'s, or ``maintd intake``'s."""
    ours = [
        s
        for (system, _b), found in samples.items()
        if system != "alertmanager" and system.startswith(INTAKE) == intake
        for s in found
    ]
    theirs = [s for (system, _b), found in samples.items() if system == "alertmanager" for s in found]
    rss, their_rss = max(s["server_rss_mb"] for s in ours), min(s["server_rss_mb"] for s in theirs)
    process = "maintd intake" if intake else "maintd serve"
    return Result(
        "ingest",
        store_kind,
        f"RSS after {n:,} alerts, {process}",
        f"{process} at most {rss:.0f} MB",
        RSS_TARGET,
        rss <= their_rss / 2,
        f"{process} {min(s['server_rss_mb'] for s in ours):.0f}-{rss:.0f} MB over {len(ours)} servers;"
        f" Alertmanager {their_rss:.0f}-{max(s['server_rss_mb'] for s in theirs):.0f} MB over {len(theirs)}",
        {
            "maintd_rss_mb": [s["server_rss_mb"] for s in ours],
            "alertmanager_rss_mb": [s["server_rss_mb"] for s in theirs],
        },
    )
