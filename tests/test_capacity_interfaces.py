"""Capacity through its doors: the API, `maintd capacity` and `maintd report capacity`."""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta

import pytest
from typer.testing import CliRunner

from maintd.cli.app import app
from maintd.engine import Engine
from tests.conftest import T0
from tests.personas import as_, client, tokens  # noqa: F401  (fixtures)
from tests.test_capacity import daily, disk, insert

PLAN = """
    targets:
      - {name: db1, kind: service}
    tasks:
      - name: disk
        kind: disk
        targets: [db1]
        schedule: {every: 1d}
        params: {paths: [/]}
"""
AT = ["--at", T0.isoformat()]  # the runs are on the fake clock's calendar


@pytest.fixture
def engine(sqlite_store, write_plan, make_engine) -> Engine:  # type: ignore[no-untyped-def]
    insert(sqlite_store, daily(60, disk))
    insert(sqlite_store, daily(5, lambda i: {"used_percent": 40.0}, target="db2"))
    return make_engine(sqlite_store, write_plan(PLAN))  # type: ignore[no-any-return]


def test_the_api_gives_each_series_with_its_projections_to_a_viewer(client, tokens, engine):  # noqa: F811
    assert client.get("/api/v1/capacity").status_code == 401
    body = client.get("/api/v1/capacity", headers=as_(tokens, "vera")).json()
    by_target = {f["series"]["target"]: f for f in body["forecasts"]}
    assert by_target["db2"]["note"] == "not enough data (5 points, need 14)"
    db1 = by_target["db1"]
    assert db1["chosen"] == "linear" and [p["months"] for p in db1["projections"]] == [3, 6, 12]
    full = datetime.fromisoformat(db1["exhaustion"]["at"])
    assert abs(full - (T0 + timedelta(days=140))) < timedelta(hours=12)  # day 200 of the series, by hand
    assert body["recommendations"][0]["urgency"] == "6 months"
    only = client.get("/api/v1/capacity?target=db2", headers=as_(tokens, "vera")).json()
    assert [f["series"]["target"] for f in only["forecasts"]] == ["db2"]
    bad = client.get("/api/v1/capacity?history=soon", headers=as_(tokens, "vera"))
    assert bad.status_code == 422 and "'soon' is not a duration" in bad.text


def test_the_cli_prints_the_table_and_json(engine, monkeypatch):
    monkeypatch.setenv("MAINTD_DATABASE_URL", engine.store.url)
    runner = CliRunner()
    table = runner.invoke(app, ["capacity", "--target", "db1", *AT], catch_exceptions=False)
    assert table.exit_code == 0, table.output
    assert "disk/db1/used_bytes:/" in table.output and "+30.4 GiB" in table.output  # growth a month
    assert "6 months: used_bytes:/ of db1 (task disk) reaches its limit 300.0 GiB" in table.output
    as_json = json.loads(runner.invoke(app, ["capacity", "--json", *AT, "--metric", "used_percent"]).output)
    assert [f["series"]["target"] for f in as_json["forecasts"]] == ["db2"]
    naive = runner.invoke(app, ["capacity", "--at", "2026-11-27T00:00:00"])
    assert naive.exit_code == 1 and "needs a time zone" in naive.output
    soon = runner.invoke(app, ["capacity", "--history", "soon"])
    assert soon.exit_code == 1 and "--history: 'soon' is not a duration" in soon.output


def test_the_report_writes_html_with_inline_charts_and_markdown_linking_them(engine, monkeypatch, tmp_path):
    monkeypatch.setenv("MAINTD_DATABASE_URL", engine.store.url)
    out = tmp_path / "reports"
    result = CliRunner().invoke(app, ["report", "capacity", "--out", str(out), *AT], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    html = (out / "capacity.html").read_text()
    assert html.count("<svg") == 1  # db2 is too short to chart
    assert 'class="history"' in html and 'class="projection"' in html and 'class="limit"' in html
    assert "not enough data (5 points, need 14)" in html
    md = (out / "capacity.md").read_text()
    [link] = re.findall(r"\]\((capacity-charts/[^)]+\.svg)\)", md)
    assert (out / link).read_text().startswith("<svg")
    assert "| disk/db1/used_bytes:/ |" in md and "**6 months**" in md


def test_the_report_says_where_it_cannot_write(engine, monkeypatch, tmp_path):
    monkeypatch.setenv("MAINTD_DATABASE_URL", engine.store.url)
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    result = CliRunner().invoke(app, ["report", "capacity", "--out", str(blocker), *AT])
    assert result.exit_code == 1 and f"--out {blocker}: cannot write the report" in result.output
