"""The KPIs through their three doors: the API, the CLI and /metrics."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from typer.testing import CliRunner

from maintd.cli.app import app
from maintd.clock import FakeClock
from maintd.engine import Engine
from maintd.kpi.exporter import KpiCollector
from maintd.store.db import Store
from tests.conftest import T0, run
from tests.personas import as_, client, tokens  # noqa: F401  (fixtures)

PLAN = """
    targets:
      - {name: web, kind: service}
    tasks:
      - name: ping
        kind: command
        targets: [web]
        schedule: {every: 1m}
        params: {argv: [sh, -c, "echo pong; exit %d"], read_only: true}
"""


def engine_with_runs(store, write_plan, make_engine, exit_code: int, runs: int) -> Engine:  # type: ignore[no-untyped-def]
    engine = make_engine(store, write_plan(PLAN % exit_code))
    assert engine.reload().ok

    async def go() -> None:
        for _ in range(runs):
            orders, _ = engine.tick(engine.clock.now())
            await engine.runner.run_all(orders)
            engine.clock.advance(60)
        await engine.runner.stop(0)

    run(go())
    return engine


@pytest.fixture
def engine(store, write_plan, make_engine) -> Engine:  # type: ignore[no-untyped-def]
    return engine_with_runs(store, write_plan, make_engine, 0, 3)


def test_the_api_gives_every_figure_with_how_it_was_computed(client, tokens, engine):  # noqa: F811
    response = client.get("/api/v1/kpis?period=1d", headers=as_(tokens, "vera"))
    assert response.status_code == 200
    body = response.json()
    figures = {f["name"]: f for f in body["figures"]}
    assert figures["seed.automation_rate"]["value"] == 100.0
    assert figures["seed.automation_rate"]["how"] == "3 of 3 runs started by maintd's schedule, not by hand"
    assert figures["maintenance.success_rate"]["value"] == 100.0
    assert body["end"].startswith(engine.clock.now().isoformat()[:19])

    only = client.get("/api/v1/kpis?group=incidents", headers=as_(tokens, "vera")).json()
    assert {f["group"] for f in only["figures"]} == {"incidents"}


def test_the_api_refuses_a_bad_period_or_group_and_needs_a_token(client, tokens, engine):  # noqa: F811
    assert client.get("/api/v1/kpis").status_code == 401
    bad = client.get("/api/v1/kpis?period=soon", headers=as_(tokens, "vera"))
    assert bad.status_code == 422 and "'soon' is not a duration" in bad.text
    assert client.get("/api/v1/kpis?period=0s", headers=as_(tokens, "vera")).status_code == 422
    assert client.get("/api/v1/kpis?group=vibes", headers=as_(tokens, "vera")).status_code == 422
    naive = client.get("/api/v1/kpis?end=2026-11-27T00:00:00", headers=as_(tokens, "vera"))
    assert naive.status_code == 422 and "time zone" in naive.text


def test_the_cli_prints_a_table_and_json(sqlite_store, write_plan, make_engine, monkeypatch):
    engine_with_runs(sqlite_store, write_plan, make_engine, 2, 2)
    monkeypatch.setenv("MAINTD_DATABASE_URL", sqlite_store.url)
    runner = CliRunner()
    end = ["--end", (T0 + timedelta(hours=1)).isoformat()]  # the runs are on the fake clock
    table = runner.invoke(
        app, ["kpi", "--period", "1d", *end, "--group", "maintenance"], catch_exceptions=False
    )
    assert table.exit_code == 0, table.output
    assert "Runs that ended ok" in table.output and "0 of 2 finished runs ok" in table.output
    everything = runner.invoke(app, ["kpi", "--period", "1d", *end], catch_exceptions=False)
    assert "Preventive vs" in everything.output and "incidents" in everything.output
    as_json = runner.invoke(app, ["kpi", "--period", "1d", *end, "--group", "seed", "--json"])
    report = json.loads(as_json.output)
    assert {f["group"] for f in report["figures"]} == {"seed"}
    bad = runner.invoke(app, ["kpi", "--period", "soon"])
    assert bad.exit_code == 1 and "--period: 'soon' is not a duration" in bad.output
    assert runner.invoke(app, ["kpi", "--group", "vibes"]).exit_code == 1
    naive = runner.invoke(app, ["kpi", "--end", "2026-11-27T00:00:00"])
    assert naive.exit_code == 1 and "needs a time zone" in naive.output


def test_metrics_export_each_kpi_and_its_target_recomputed_at_most_once_per_ttl(
    store, write_plan, make_engine
):
    engine = engine_with_runs(store, write_plan, make_engine, 0, 2)
    clock = engine.clock
    assert isinstance(clock, FakeClock)
    registry = CollectorRegistry()
    registry.register(KpiCollector(store, clock, ttl=300))
    text = generate_latest(registry).decode()
    assert 'maintd_kpi{name="seed.automation_rate",unit="%"} 100.0' in text
    assert 'maintd_kpi_target{name="seed.automation_rate",unit="%"} 90.0' in text
    assert 'maintd_kpi{name="maintenance.success_rate",unit="%"} 100.0' in text

    engine_with_runs(store, write_plan, make_engine, 2, 2)  # two critical runs (2 min): 2 of 4 ok
    assert 'maintd_kpi{name="maintenance.success_rate",unit="%"} 100.0' in generate_latest(registry).decode()
    clock.advance(181)
    assert 'maintd_kpi{name="maintenance.success_rate",unit="%"} 50.0' in generate_latest(registry).decode()


def test_a_store_that_cannot_be_read_gives_no_kpi_series_but_the_scrape_works(caplog):
    registry = CollectorRegistry()
    away = Store("postgresql+psycopg://postgres@127.0.0.1:1/nowhere?connect_timeout=1")
    registry.register(KpiCollector(away, FakeClock(T0)))
    text = generate_latest(registry).decode()
    assert "# TYPE maintd_kpi gauge" in text and "maintd_kpi{" not in text
    assert "KPIs not computed for /metrics" in caplog.text
