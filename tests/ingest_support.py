"""What the alert-ingest tests share: an app on a real store, integration keys, read-backs."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from maintd.alerts.integrations import IntegrationKind, create_integration
from maintd.api.app import create_app
from maintd.api.deps import AppContext
from maintd.engine import Engine
from maintd.store.db import Store
from maintd.store.models import AlertRow, IncidentRow

# Enough plan for the engine to have incident settings; the tests post alerts, they run nothing.
PLAN = """
    targets:
      - {name: db1, kind: database}
    tasks: []
"""


@contextmanager
def client_for(engine: Engine) -> Iterator[TestClient]:
    app = create_app(AppContext(engine.store, engine.clock, engine.metrics, engine))
    with TestClient(app) as client:
        yield client


def make_integrations(engine: Engine, **kinds: IntegrationKind) -> dict[str, str]:
    """name=kind, ... → name: key."""
    with engine.store.write() as s:
        return {
            name: create_integration(s, name=name, kind=kind, now=engine.clock.now(), actor="test")
            for name, kind in kinds.items()
        }


def alerts(store: Store) -> list[AlertRow]:
    with store.read() as s:
        return list(s.scalars(select(AlertRow).order_by(AlertRow.id)))


def incidents(store: Store) -> list[IncidentRow]:
    with store.read() as s:
        return list(s.scalars(select(IncidentRow).order_by(IncidentRow.id)))


def alert_count(store: Store) -> int:
    with store.read() as s:
        return s.scalar(select(func.count()).select_from(AlertRow)) or 0


def metric(client: TestClient, source: str, outcome: str) -> float:
    """maintd_alerts_received_total{source, outcome}, 0 when absent."""
    line = f'maintd_alerts_received_total{{outcome="{outcome}",source="{source}"}} '
    for row in client.get("/metrics").text.splitlines():
        if row.startswith(line):
            return float(row[len(line) :])
    return 0.0


def wait_for(what: str, probe: Callable[[], Any], timeout: float = 10.0) -> Any:
    """Poll ``probe`` until it returns something truthy; fail naming ``what`` at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.05)


def chunks(data: bytes, size: int = 64 * 1024) -> Iterator[bytes]:
    """A body sent chunked: no Content-Length, so the limit must be counted as it streams."""
    for i in range(0, len(data), size):
        yield data[i : i + size]
