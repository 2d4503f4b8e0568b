"""SLOs through the plan, the API and the CLI."""

from __future__ import annotations

import json
import textwrap
from datetime import timedelta

import pytest
from typer.testing import CliRunner

from maintd.cli.app import app
from maintd.engine import Engine
from maintd.plan.loader import PlanError, load_plan
from tests.conftest import T0
from tests.personas import as_, client, tokens  # noqa: F401  (fixtures)
from tests.test_slo import DAY, MIN, PLAN, probe, start


@pytest.fixture
def engine(sqlite_store, write_plan, make_engine) -> Engine:  # type: ignore[no-untyped-def]
    engine: Engine = start(sqlite_store, write_plan, make_engine)
    probe(sqlite_store, T0 - 4 * DAY, "ok")
    probe(sqlite_store, T0 - 3 * MIN, "critical")  # 3 minutes down until now: 5m 600x, 1h 50x
    return engine


def test_the_api_lists_each_slo_with_its_budget_and_burn(client, tokens, engine):  # noqa: F811
    assert client.get("/api/v1/slos").status_code == 401
    body = client.get("/api/v1/slos", headers=as_(tokens, "vera")).json()
    (slo,) = body
    assert slo["name"] == "web-avail" and slo["target"] == "web" and slo["window"] == "30d"
    assert slo["budget"]["allowed_seconds"] == pytest.approx(2592.0)
    assert slo["budget"]["consumed_seconds"] == 180.0
    assert {b["window"]: b["rate"] for b in slo["burn_rates"]}["5m"] == pytest.approx(600.0)
    assert slo["page"] is True and slo["ticket"] is False
    headers = as_(tokens, "vera")
    assert client.get("/api/v1/slos?name=nope", headers=headers).json() == []
    assert len(client.get("/api/v1/slos?target=web&burning=true", headers=headers).json()) == 1
    assert client.get("/api/v1/slos?burning=false", headers=headers).json() == []
    assert client.get("/api/v1/slos?offset=1", headers=headers).json() == []
    # the SLOs of the plan active then: none before the plan that defines it was loaded (at T0)
    assert client.get("/api/v1/slos?at=2026-11-26T00:00:00Z", headers=headers).json() == []
    assert client.get("/api/v1/slos?at=2026-11-26T00:00:00", headers=headers).status_code == 422


def test_the_cli_prints_a_table_and_json(engine, monkeypatch):
    monkeypatch.setenv("MAINTD_DATABASE_URL", engine.store.url)
    runner = CliRunner()
    at = ["--at", T0.isoformat()]
    table = runner.invoke(app, ["slo", *at], catch_exceptions=False)
    assert table.exit_code == 0, table.output
    assert "web-avail" in table.output and "600.0x" in table.output and "page" in table.output
    as_json = runner.invoke(app, ["slo", "--name", "web-avail", *at, "--json"], catch_exceptions=False)
    (slo,) = [json.loads(line) for line in as_json.output.splitlines()]
    assert slo["budget"]["remaining_seconds"] == pytest.approx(2592.0 - 180.0)
    missing = runner.invoke(app, ["slo", "--name", "nope", *at])
    assert missing.exit_code == 1 and "no SLO named 'nope'" in missing.output
    naive = runner.invoke(app, ["slo", "--at", "2026-11-27T00:00:00"])
    assert naive.exit_code == 1 and "needs a time zone" in naive.output


def test_the_kpi_report_carries_the_budget_and_burn_rates(engine, monkeypatch):
    monkeypatch.setenv("MAINTD_DATABASE_URL", engine.store.url)
    out = CliRunner().invoke(
        app, ["kpi", "--period", "1d", "--end", T0.isoformat(), "--group", "availability", "--json"]
    )
    figures = {f["name"]: f for f in json.loads(out.output)["figures"]}
    left = figures["slo.web-avail.budget_remaining"]["value"]
    assert left == pytest.approx(100 * (2592 - 180) / 2592, abs=1e-4)  # 93.0556 %
    assert figures["slo.web-avail.burn_rate.5m"]["value"] == pytest.approx(600.0)
    assert figures["slo.web-avail.burn_rate.5m"]["unit"] == "x"


@pytest.mark.parametrize(
    ("slos", "problem"),
    [
        ("- {name: a, target: nowhere}", "unknown target 'nowhere'"),
        ("- {name: a, target: web, tasks: [nope]}", "unknown task 'nope'"),
        ("- {name: a, target: db, tasks: [web-http]}", "task 'web-http' does not run on 'db'"),
        ("- {name: a, target: web}\n- {name: a, target: web}", "slo 'a' is defined twice"),
        ("- {name: a, target: web, objective: 100}", "less than 100"),
        ("- {name: a, target: web, window: 10m}", "window must be between 1h and 366d"),
    ],
)
def test_a_bad_slo_is_refused_with_its_place(write_plan, registry, slos, problem):
    text = textwrap.dedent(PLAN).split("slos:")[0] + "slos:\n" + textwrap.indent(slos, "  ") + "\n"
    text = text.replace("targets:\n", "targets:\n  - {name: db, kind: database}\n", 1)
    with pytest.raises(PlanError) as caught:
        load_plan(write_plan(text), registry)
    assert any(problem in str(p) and "slos" in str(p) for p in caught.value.problems), caught.value.problems


def test_an_slo_defaults_to_99_9_percent_over_30_days(write_plan, registry):
    loaded = load_plan(write_plan(textwrap.dedent(PLAN)), registry)
    (slo,) = loaded.plan.slos
    assert slo.objective == 99.9 and slo.window == timedelta(days=30) and slo.tasks == ["web-http"]
