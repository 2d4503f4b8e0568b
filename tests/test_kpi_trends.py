"""KPI trends: against the period before, by incident type, performance and security figures."""

from __future__ import annotations

from datetime import timedelta

import pytest

from maintd.kpi.report import compute
from tests.conftest import T0
from tests.test_kpi import DAY, END, a_run, an_incident

START = END - 30 * DAY  # == T0: the report's period; the period before is [T0 - 30d, T0)


def report(store, rows):  # type: ignore[no-untyped-def]
    with store.write() as s:
        s.add_all(rows)
    with store.read() as s:
        return compute(s, end=END, period=30 * DAY, now=END)


def typed(priority: str, at, ack: float | None, fix: float | None, alertname: str):  # type: ignore[no-untyped-def]
    incident = an_incident(priority, at, ack, fix)
    incident.labels = {"alertname": alertname}
    return incident


def test_incident_frequency_is_compared_with_the_period_before(store):
    rows = [an_incident("P2", T0 - 5 * DAY, 1, 1) for _ in range(4)]
    rows += [an_incident("P2", T0 + DAY, 1, 1) for _ in range(5)]
    change = report(store, rows).get("incidents.change")
    assert change.value == 25.0 and change.met is False  # 5 against 4: a quarter more
    assert change.how == "5 incidents opened in the period, 4 in the period of the same length before it"


def test_mtta_and_mttr_by_incident_type(store):
    at = T0 + DAY
    rows = [
        typed("P1", at, 60, 600, "DiskFull"),
        typed("P1", at, 120, None, "DiskFull"),
        typed("P2", at, 30, 90, "CertExpiry"),
    ]
    r = report(store, rows)
    assert r.get("incidents.mtta.type.DiskFull").value == 90.0
    assert r.get("incidents.mttr.type.DiskFull").value == 600.0
    assert r.get("incidents.mttr.type.DiskFull").samples == 1
    assert r.get("incidents.mtta.type.CertExpiry").value == 30.0


def test_http_latency_against_the_period_before_and_the_cache_hit_ratio(store):
    rows = [
        a_run(T0 - 3 * DAY, metrics={"time": 0.100}),
        a_run(T0 - 2 * DAY, metrics={"time": 0.100}),
        a_run(T0 + DAY, metrics={"time": 0.120}),
        a_run(T0 + 2 * DAY, metrics={"time": 0.130}),
        a_run(T0 + 2 * DAY, kind="redis", target="cache", metrics={"hit_ratio": 0.9}),
        a_run(T0 + 3 * DAY, kind="redis", target="cache", metrics={"hit_ratio": 0.8}),
        a_run(T0 + 3 * DAY, kind="redis", target="cache", metrics={}),  # a run that could not tell
    ]
    r = report(store, rows)
    latency = r.get("performance.http_time.web")
    assert latency.value == pytest.approx(25.0) and latency.met is False  # 125 ms against 100 ms
    assert latency.how == "mean time 125.0 ms over 2 http runs; the period before: 100.0 ms"
    hits = r.get("performance.cache_hit_ratio.cache")
    assert hits.value == pytest.approx(85.0) and hits.samples == 2


def test_runs_in_a_window_and_security_findings(store):
    at = T0 + DAY
    windowed = [a_run(at, kind="logs", duration_ms=ms) for ms in (60_000.0, 180_000.0)]
    for run in windowed:
        run.window_end = at + timedelta(hours=1)
    scans = [
        a_run(at, kind="security-scan", task="deps", metrics={"findings_new": 3, "findings_open": 3}),
        a_run(at + DAY, kind="security-scan", task="deps", metrics={"findings_new": 1, "findings_open": 2}),
        a_run(
            at,
            kind="security-scan",
            task="code",
            metrics={"findings_new": 2, "findings_open": 2, "critical": 1},
        ),
    ]
    r = report(store, [*windowed, a_run(at, kind="logs", duration_ms=5.0), *scans])
    assert r.get("maintenance.window_run_seconds").value == 120.0  # the unwindowed run is left out
    assert r.get("security.findings_new").value == 6
    opened = r.get("security.findings_open")
    assert opened.value == 4 and "1 critical" in opened.how  # each task's last scan: 2 + 2


def test_nothing_to_compare_shows_no_figure_rather_than_zero(store):
    r = report(store, [])
    assert r.get("incidents.change").value is None
    assert r.get("security.findings_open").value is None
    assert not [f for f in r.figures if f.group == "performance"]
