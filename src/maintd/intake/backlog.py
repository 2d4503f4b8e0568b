"""``maintd intake``'s journal at each scrape of ``maintd serve``'s /metrics."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import cast

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import Table, func, select

from maintd.clock import Clock
from maintd.store.db import Store
from maintd.store.intake_tables import AlertIntakeRow

log = logging.getLogger(__name__)
_journal = cast(Table, AlertIntakeRow.__table__)


class BacklogCollector(Collector):
    """``maintd_intake_backlog``, ``maintd_intake_oldest_seconds`` and ``maintd_intake_failed_rows``,
    read from the journal at each scrape. A database that cannot be read gives no series."""

    def __init__(self, store: Store, clock: Clock) -> None:
        self.store, self.clock = store, clock

    def describe(self) -> list[GaugeMetricFamily]:
        return []  # read at scrape time; describing would query at registration

    def collect(self) -> Iterator[GaugeMetricFamily]:
        waiting = _journal.c.error.is_(None)
        try:
            with self.store.read() as session:
                rows = session.execute(
                    select(waiting.label("waiting"), func.count(), func.min(_journal.c.received_at)).group_by(
                        waiting
                    )
                ).all()
        except Exception as exc:  # a scrape must not fail because the store is away
            log.warning("intake backlog not read for /metrics: %s", str(exc).splitlines()[0])
            return
        counts = {bool(w): (n, oldest) for w, n, oldest in rows}
        backlog, oldest = counts.get(True, (0, None))
        age = max(0.0, (self.clock.now() - oldest).total_seconds()) if oldest is not None else 0.0
        failed, _ = counts.get(False, (0, None))
        yield GaugeMetricFamily("maintd_intake_backlog", "Intake journal rows waiting", value=backlog)
        yield GaugeMetricFamily(
            "maintd_intake_oldest_seconds", "Age of the oldest waiting intake row (0: none)", value=age
        )
        yield GaugeMetricFamily("maintd_intake_failed_rows", "Intake rows kept with an error", value=failed)
