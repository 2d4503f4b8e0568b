"""The KPIs as Prometheus gauges: ``maintd_kpi{name, unit}`` and ``maintd_kpi_target{name, unit}``.

Computed over the last 30 days (the seed's SLO window) at scrape time, at most once a minute: a
report reads every run of the period, so scrapes in between get the last one. A database that
cannot be read gives no KPI series, never a failed scrape.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from datetime import timedelta

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from maintd.clock import Clock
from maintd.kpi.model import Report
from maintd.kpi.report import compute
from maintd.store.db import Store

PERIOD = timedelta(days=30)
TTL = 60.0
log = logging.getLogger(__name__)


class KpiCollector(Collector):
    def __init__(self, store: Store, clock: Clock, *, period: timedelta = PERIOD, ttl: float = TTL) -> None:
        self.store, self.clock, self.period, self.ttl = store, clock, period, ttl
        self._lock = threading.Lock()
        self._report: Report | None = None

    def describe(self) -> list[GaugeMetricFamily]:
        return []  # computed at scrape time; describing would run the queries at registration

    def collect(self) -> Iterator[GaugeMetricFamily]:
        report = self._fresh()
        value = GaugeMetricFamily("maintd_kpi", "KPI over the last 30 days", labels=["name", "unit"])
        target = GaugeMetricFamily("maintd_kpi_target", "The KPI's target", labels=["name", "unit"])
        for figure in report.figures if report is not None else []:
            if figure.value is not None:
                value.add_metric([figure.name, figure.unit], figure.value)
            if figure.target is not None:
                target.add_metric([figure.name, figure.unit], figure.target)
        yield value
        yield target

    def _fresh(self) -> Report | None:
        now = self.clock.now()
        with self._lock:
            cached = self._report
            if cached is not None and (now - cached.computed_at).total_seconds() < self.ttl:
                return cached
            try:
                with self.store.read() as session:
                    self._report = compute(session, end=now, period=self.period, now=now)
            except Exception as exc:  # a scrape must not fail because the store is away
                log.warning("KPIs not computed for /metrics: %s", str(exc).splitlines()[0])
                return None
            return self._report
