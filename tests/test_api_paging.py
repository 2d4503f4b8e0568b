"""Every list route of /api/v1 pages: ``limit`` with ``offset`` (runs and events also by cursor),
and the filters added beside them; without them a list answers as it always did."""

from __future__ import annotations

from typing import Any

import pytest

from maintd.engine import Engine
from tests.personas import as_, client, tokens  # noqa: F401  (fixtures)

PLAN = """
    targets:
      - {name: web, kind: service}
    tasks:
      - {name: a-http, kind: http, targets: [web], schedule: {every: 1m}, enabled: false,
         params: {url: "http://127.0.0.1:9/"}}
      - {name: b-disk, kind: disk, targets: [web], schedule: {every: 1m}, enabled: false,
         params: {path: /}}
      - {name: c-http, kind: http, targets: [web], schedule: {every: 1m}, enabled: false,
         params: {url: "http://127.0.0.1:9/"}}
"""


@pytest.fixture
def engine(sqlite_store, write_plan, make_engine) -> Engine:  # type: ignore[no-untyped-def]
    engine: Engine = make_engine(sqlite_store, write_plan(PLAN))
    assert engine.reload().ok
    return engine


def pages(client: Any, headers: dict[str, str], path: str, size: int) -> list[list[Any]]:  # noqa: F811
    sep = "&" if "?" in path else "?"
    out = []
    for offset in range(0, 12, size):
        out.append(client.get(f"{path}{sep}limit={size}&offset={offset}", headers=headers).json())
    return out


def test_the_database_lists_page_with_limit_and_offset(client, tokens, engine):  # noqa: F811
    rob = as_(tokens, "rob")
    for i in range(5):
        alert = {"labels": {"alertname": f"Down{i}", "target": f"t{i}"}, "severity": "warning"}
        assert client.post("/api/v1/alerts", json=[alert], headers=rob).status_code == 200
        silence = {"matchers": [f"alertname=Quiet{i}"], "duration": "2h", "comment": "x"}
        assert client.post("/api/v1/silences", json=silence, headers=rob).status_code == 201
    for path in ("/api/v1/incidents", "/api/v1/alerts", "/api/v1/silences"):
        everything = [row["id"] for row in client.get(path, headers=rob).json()]
        assert len(everything) == 5
        paged = [[row["id"] for row in page] for page in pages(client, rob, path, 2)]
        assert paged[:3] == [everything[0:2], everything[2:4], everything[4:5]], path  # newest first
        assert paged[3:] == [[]] * (len(paged) - 3)
    assert client.get("/api/v1/incidents?offset=-1", headers=rob).status_code == 422
    for path in (
        "/api/v1/notifications",
        "/api/v1/postmortems",
        "/api/v1/postmortem-actions",
        "/api/v1/changes",
        "/api/v1/remediations",
    ):
        assert client.get(f"{path}?limit=2&offset=3", headers=rob).json() == [], path


def test_the_plan_lists_page_and_filter(client, tokens, engine):  # noqa: F811
    vera = as_(tokens, "vera")
    names = [t["name"] for t in client.get("/api/v1/tasks", headers=vera).json()]
    assert names == ["a-http", "b-disk", "c-http"]  # no limit: all of them, as before
    assert [t["name"] for t in client.get("/api/v1/tasks?limit=1&offset=1", headers=vera).json()] == [
        "b-disk"
    ]
    assert [t["name"] for t in client.get("/api/v1/tasks?kind=http", headers=vera).json()] == [
        "a-http",
        "c-http",
    ]
    for path in (
        "/api/v1/oncall",
        "/api/v1/maintenance-windows?open=false",
        "/api/v1/remediations/breakers",
        "/api/v1/remediations/circuits",
        "/api/v1/lifecycle/components?stage=production",
        "/api/v1/lifecycle/review",
        "/api/v1/docs?kind=runbook",
        "/api/v1/docs/stale?owner=ann",
        "/api/v1/training/matrix?role=sre",
        "/api/v1/training/overdue?person=ann",
        "/api/v1/slos?target=web",
    ):
        sep = "&" if "?" in path else "?"
        answer = client.get(f"{path}{sep}limit=5&offset=0", headers=vera)
        assert answer.status_code == 200 and answer.json() == [], (path, answer.text)
        assert client.get(f"{path}{sep}limit=0", headers=vera).status_code == 422, path
