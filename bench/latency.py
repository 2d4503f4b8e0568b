"""Benchmark 9: ``latency``: from an alert accepted to its first page delivered, beside Alertmanager.

A webhook receiver (aiohttp, loopback) stamps each page as it arrives; a driver in the
same process (``python -m bench.latencychild``) sends 100 distinct alerts a second, one
a request, for 20 s, each opening its own incident (maintd) or group (Alertmanager):

- **maintd**: ``maintd serve`` on a new database; the plan pages one person, whose only
  channel is ``json://127.0.0.1:PORT/maintd`` (apprise POSTs JSON), at level 1 after 0m,
  ``group_wait: 0s``. The page's title carries the incident id the 2xx named.
- **Alertmanager** (Debian's prometheus-alertmanager): ``group_by: [bench_id]`` (one group
  per alert), ``group_wait: 0s``, ``group_interval: 1s``, a webhook receiver at
  ``http://127.0.0.1:PORT/alertmanager``; the page carries the alert's labels.

Latency is from the 2xx of the alert's POST to the page's arrival. For maintd the
benchmark then checks that every page is durably logged (its notification row ``sent``
with a successful attempt recorded) and reads the stored times to say where the time
went. A full run repeats each case three times, interleaved; the table shows medians.
"""

from __future__ import annotations

import statistics
import time
from datetime import datetime
from typing import Any

from bench import services
from bench.common import Result, Shape, child_json, percentile, scratch_store
from bench.ingest import maintd_server

RATE = 100.0  # alerts a second
SECONDS = 20
TARGET = "p99 <= 10 ms, every page durably logged"
TARGET_P99_MS = 10.0
RECORD_WAIT = 10.0  # seconds for the attempts of pages already delivered to be recorded

_PLAN = """\
targets: []
tasks: []
people:
  - {{name: pat, email: pat@example.test, notify: ["json://127.0.0.1:{port}/maintd"]}}
escalation_policies:
  - name: bench
    levels:
      - {{after: 0m, notify: [{{person: pat}}]}}
incidents:
  escalation_policy: bench
  group_wait: 0s
"""

_ALERTMANAGER = """\
route:
  receiver: bench
  group_by: [bench_id]
  group_wait: 0s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: bench
    webhook_configs:
      - url: http://127.0.0.1:{port}/alertmanager
        send_resolved: false
"""


def run(url: str, store_kind: str, shape: Shape, quick: bool) -> list[Result]:
    n = int(RATE * (5 if quick else SECONDS))
    repeats = 1 if quick else 3
    ours: list[dict[str, Any]] = []
    theirs: list[dict[str, Any]] = []
    for _ in range(repeats):
        theirs.append(alertmanager_case(n))
        ours.append(maintd_case(store_kind, n))
    return [_row("maintd", store_kind, ours), _row("alertmanager", store_kind, theirs, ours)]


def alertmanager_case(n: int, rate: float = RATE) -> dict[str, Any]:
    port = services.free_port()
    with services.alertmanager(_ALERTMANAGER.format(port=port)) as am:
        sample = _drive(
            "alertmanager", f"http://127.0.0.1:{am.port}/api/v2/alerts", port, n, am.proc.pid, rate
        )
    return summarise(sample)


def maintd_case(store_kind: str, n: int, rate: float = RATE) -> dict[str, Any]:
    port = services.free_port()
    # maintd_server raises the ingest rate limit (100 requests/s by default, this sends 100/s).
    with scratch_store(store_kind) as db_url, maintd_server(db_url, _PLAN.format(port=port)) as server:
        sample = _drive("maintd", f"{server.url}/api/v1/alerts", port, n, server.pid, rate, server.token)
        logged = _logged(db_url, sample)
    found = summarise(sample)
    found.update(logged)
    return found


def _drive(system: str, url: str, port: int, n: int, pid: int, rate: float, auth: str = "") -> dict[str, Any]:
    args = [system, url, str(port), str(n), str(rate), str(pid)] + ([auth] if auth else [])
    sample = child_json("bench.latencychild", args)
    if sample["accepted"] != n:
        raise AssertionError(f"{system}: {sample['accepted']} of {n} alerts accepted: {sample['errors']}")
    return sample


def summarise(sample: dict[str, Any]) -> dict[str, Any]:
    latencies = [s["latency_ms"] for s in sample["sends"] if s["latency_ms"] is not None]
    posts = [s["post_ms"] for s in sample["sends"]]
    return {
        "system": sample["system"],
        "accepted": sample["accepted"],
        "delivered": len(latencies),
        "missing": sample["accepted"] - len(latencies),
        "pages": sample["pages"],
        "p50_ms": percentile(latencies, 50) if latencies else None,
        "p99_ms": percentile(latencies, 99) if latencies else None,
        "max_ms": max(latencies) if latencies else None,
        "post_p50_ms": percentile(posts, 50),
        "post_p99_ms": percentile(posts, 99),
        "server_cpu_ms_per_alert": sample["server_cpu_s"] * 1000 / max(1, sample["accepted"]),
        "send_wall_s": sample["send_wall_s"],
    }


# -- maintd's log: durably logged, and where the time went ------------------------------


def _logged(db_url: str, sample: dict[str, Any]) -> dict[str, Any]:
    """Each delivered page's row ``sent`` with an ok attempt; the stored times of each stage."""
    from maintd.store.db import Store

    wanted = {int(s["key"]): s for s in sample["sends"] if s["latency_ms"] is not None}
    store = Store(db_url)
    try:
        deadline = time.monotonic() + RECORD_WAIT
        while True:  # a page arrives before its attempt is recorded
            rows, fired = _stored(store)
            logged = {
                r.incident_id: r for r in rows if r.ok and r.status == "sent" and r.incident_id in wanted
            }
            if len(logged) >= len(wanted) or time.monotonic() > deadline:
                break
            time.sleep(0.2)
    finally:
        store.dispose()
    stages: dict[str, list[float]] = {k: [] for k in STAGES}
    for incident_id, r in logged.items():
        s, at = wanted[incident_id], fired.get(f"incident:{incident_id}")
        if at is None:
            continue
        accepted, arrived = s["accepted_wall"], s["arrived_wall"]
        stages[STAGES[0]].append((at.timestamp() - accepted) * 1000)
        stages[STAGES[1]].append((r.at.timestamp() - at.timestamp()) * 1000)
        stages[STAGES[2]].append((arrived - r.at.timestamp()) * 1000)
        stages[STAGES[3]].append(r.duration_ms)
        stages[STAGES[4]].append((r.sent_at.timestamp() - arrived) * 1000)
    return {
        "logged": len(logged),
        "attempts": len(rows),
        "stages": {k: _p(v) for k, v in stages.items() if v},
    }


def _stored(store: Any) -> tuple[list[Any], dict[str, datetime]]:
    """Every attempt with its row's status and times; the fired time of each incident's first step."""
    from sqlalchemy import select

    from maintd.store.models import NotificationAttemptRow as Attempt
    from maintd.store.models import NotificationRow as Row
    from maintd.store.models import TimerRow

    with store.read() as session:
        rows = session.execute(
            select(
                Row.incident_id, Row.status, Row.sent_at, Attempt.at, Attempt.duration_ms, Attempt.ok
            ).join(Attempt, Attempt.notification_id == Row.id)
        ).all()
        fired = session.execute(select(TimerRow.subject, TimerRow.fired_at).where(TimerRow.step == "c0.l1"))
        return list(rows), {subject: at for subject, at in fired if at is not None}


STAGES = (
    "2xx -> firing tick starts",
    "fired -> send starts",
    "send starts -> arrival",
    "send (apprise, until 2xx)",
    "arrival -> logged sent",
)


def _p(values: list[float]) -> dict[str, float]:
    return {"p50": percentile(values, 50), "p99": percentile(values, 99)}


# -- the table ------------------------------------------------------------------------------


def _med(samples: list[dict[str, Any]], key: str) -> float:
    values = [s[key] for s in samples if s[key] is not None]
    return float(statistics.median(values)) if values else float("nan")


def _figures(samples: list[dict[str, Any]]) -> str:
    p99s = sorted(s["p99_ms"] for s in samples if s["p99_ms"] is not None)
    spread = f" ({p99s[0]:.1f}-{p99s[-1]:.1f})" if len(p99s) > 1 else ""
    return (
        f"p50 {_med(samples, 'p50_ms'):.1f} ms, p99 {_med(samples, 'p99_ms'):.1f} ms{spread},"
        f" max {_med(samples, 'max_ms'):.1f} ms; delivered {sum(s['delivered'] for s in samples)}"
        f" of {sum(s['accepted'] for s in samples)}, missing {sum(s['missing'] for s in samples)};"
        f" POST p50 {_med(samples, 'post_p50_ms'):.1f} ms; server CPU"
        f" {_med(samples, 'server_cpu_ms_per_alert'):.2f} ms/alert"
    )


def _row(
    system: str, store_kind: str, samples: list[dict[str, Any]], beside: list[dict[str, Any]] | None = None
) -> Result:
    p99 = _med(samples, "p99_ms")
    note = (f"median of {len(samples)}; " if len(samples) > 1 else "") + _figures(samples)
    if system == "alertmanager":
        return Result(
            "latency",
            store_kind,
            "Alertmanager, group_wait 0",
            f"p99 {p99:.1f} ms",
            "reference",
            True,
            note + " (beside maintd on " + store_kind + ")",
            {"samples": samples},
        )
    logged = sum(s["logged"] for s in samples)
    delivered = sum(s["delivered"] for s in samples)
    missing = sum(s["missing"] for s in samples)
    stages = "; ".join(
        f"{k} p50 {_med([s['stages'][k] for s in samples if k in s['stages']], 'p50'):.1f}"
        f" / p99 {_med([s['stages'][k] for s in samples if k in s['stages']], 'p99'):.1f} ms"
        for k in STAGES
    )
    return Result(
        "latency",
        store_kind,
        "maintd, group_wait 0",
        f"p99 {p99:.1f} ms",
        TARGET,
        p99 <= TARGET_P99_MS and missing == 0 and logged == delivered,
        f"{note}; logged sent {logged} of {delivered}; stages: {stages}",
        {"samples": samples},
    )
