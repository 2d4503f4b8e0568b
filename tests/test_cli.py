"""The command line: validation output, schema, tokens, queries with --json, manual runs."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import pytest
from rich.console import Console
from typer.testing import CliRunner

from maintd.cli import app
from maintd.cli.common import table
from maintd.registry import Registry
from tests.harness import cli as run_cli
from tests.ports import free_port

GOOD = """
    targets:
      - {name: web, kind: service, connection: {path: /tmp}}
    tasks:
      - name: hello
        kind: command
        targets: [web]
        schedule: {every: 5m}
        params: {argv: [echo, "hello {target.name}"], read_only: true}
      - name: broken
        kind: command
        targets: [web]
        schedule: {cadence: daily, window: "02:00-03:00 UTC"}
        params: {argv: [sh, -c, "echo down; exit 2"], read_only: true}
      - name: change
        kind: command
        targets: [web]
        schedule: {cron: "0 4 * * 0"}
        params: {argv: [touch, "{target.path}/maintd-cli-test-touched"]}
"""


@pytest.fixture
def cli(sqlite_store, monkeypatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("MAINTD_DATABASE_URL", sqlite_store.url)
    monkeypatch.delenv("MAINTD_PLAN", raising=False)
    runner = CliRunner()

    def invoke(*args: str):  # type: ignore[no-untyped-def]
        return runner.invoke(app, list(args), catch_exceptions=False)

    return invoke


def test_validate_accepts_a_good_plan_and_counts_it(cli, write_plan):
    result = cli("plan", "validate", str(write_plan(GOOD)))
    assert result.exit_code == 0
    assert "plan OK: 1 target, 3 tasks, 3 schedules" in result.output


def test_validate_prints_every_problem_with_file_line_and_field(cli, write_plan):
    plan = write_plan(
        GOOD.replace("every: 5m", "every: 5m, cron: '* * * * *'").replace(
            "[web]\n        schedule: {cadence", "[ghost]\n        schedule: {cadence"
        )
    )
    result = cli("plan", "validate", str(plan))
    assert result.exit_code == 1
    assert (
        f"{plan / 'plan.yaml'}:7: error: tasks[0].schedule: a schedule needs exactly one of" in result.output
    )
    assert f"{plan / 'plan.yaml'}:11: error: tasks[1].targets[0]: unknown target 'ghost'" in result.output
    assert "2 problems; the plan is not valid" in result.output


def test_validate_json_is_machine_readable(cli, write_plan):
    result = cli("plan", "validate", "--json", str(write_plan("tasks: {}\n")))
    body = json.loads(result.output)
    assert result.exit_code == 1
    assert body["ok"] is False and body["problems"][0]["field"] == "tasks"
    text = cli("plan", "validate", str(write_plan("tasks: {}\n"))).output
    assert "1 problem; the plan is not valid" in text


def test_schema_is_json_schema_naming_every_kind(cli):
    schema = json.loads(cli("plan", "schema").output)
    assert schema["$schema"].endswith("2020-12/schema")
    assert schema["$defs"]["Task"]["properties"]["kind"]["enum"] == Registry.default().names()


def test_a_token_is_printed_once_listed_by_name_and_revocable(cli):
    created = cli("token", "create", "--name", "ci", "--role", "responder")
    assert created.exit_code == 0 and created.output.startswith("mtd_")
    listed = cli("token", "list", "--json")
    assert json.loads(listed.output)["role"] == "responder"
    assert created.output.strip() not in listed.output
    assert cli("token", "create", "--name", "ci").exit_code == 1
    assert cli("token", "revoke", "ci").exit_code == 0
    assert cli("token", "revoke", "ci").exit_code == 1


def test_run_executes_now_prints_the_result_and_exits_with_the_worst_status(cli, write_plan):
    plan = str(write_plan(GOOD))
    ok = cli("run", "hello", "--plan", plan)
    assert ok.exit_code == 0
    assert "hello web" in ok.output
    down = cli("run", "broken", "--plan", plan, "--json")
    assert down.exit_code == 2
    assert json.loads(down.output.splitlines()[0])["status"] == "critical"


def test_a_dry_run_changes_nothing(cli, write_plan, tmp_path):
    touched = Path("/tmp/maintd-cli-test-touched")
    touched.unlink(missing_ok=True)
    result = cli("run", "change", "--plan", str(write_plan(GOOD)), "--dry-run")
    assert result.exit_code == 0
    assert "would run" in result.output
    assert not touched.exists()


def test_run_names_what_is_wrong(cli, write_plan):
    plan = str(write_plan(GOOD))
    assert (
        "no task 'nope' in the plan; tasks: hello, broken, change"
        in cli("run", "nope", "--plan", plan).output
    )
    assert "does not run on 'db'" in cli("run", "hello", "--plan", plan, "--target", "db").output
    assert "no plan" in cli("run", "hello").output


def test_runs_tasks_and_events_show_what_happened(cli, write_plan):
    plan = str(write_plan(GOOD))
    cli("run", "hello", "--plan", plan)
    runs = [json.loads(line) for line in cli("runs", "--json").output.splitlines()]
    assert [(r["task"], r["status"], r["trigger"]) for r in runs] == [("hello", "ok", "manual")]
    table = cli("runs").output
    assert "hello" in table and "manual" in table
    events = [json.loads(line) for line in cli("events", "--json").output.splitlines()]
    assert [e["kind"] for e in events] == ["run.requested", "task.status"]
    assert cli("tasks", "--json").output == ""  # no plan activated by a server yet


def test_serve_without_a_plan_explains_what_to_pass(cli):
    result = cli("serve")
    assert result.exit_code == 1
    assert "no plan: pass --plan PATH" in result.output


def test_a_table_keeps_its_columns_whole_and_cuts_the_free_text_last_one_to_one_line():
    out = io.StringIO()
    narrow = Console(file=out, width=80)
    t = table("events", ["id", "kind", "subject", "details"])
    t.add_row("94", "notification.retry", "training:carol/risk-management", "a=1, " * 40)
    t.add_row("95", "run.finished", "task:ping/web", "[green]ok[/] in 5 ms")
    narrow.print(t)
    lines = out.getvalue().splitlines()
    first = next(line for line in lines if line.lstrip().startswith("94 "))
    assert "notification.retry   training:carol/risk-management   a=1, a=1," in first
    assert first.rstrip().endswith("…") and len(first) <= 80
    assert not any(line.lstrip().startswith(("a=1", "on.retry", "management")) for line in lines)
    assert any("task:ping/web" in line and line.rstrip().endswith("ok in 5 ms") for line in lines)
    assert "[green]" not in out.getvalue()  # the last column's markup still applies


def test_an_empty_table_says_so_and_tasks_says_when_no_plan_is_active(cli, write_plan, sqlite_store):
    tasks = cli("tasks").output.splitlines()
    assert tasks[-1] == f"no plan is active in {sqlite_store.describe()} yet: maintd serve loads one"
    cli("run", "hello", "--plan", str(write_plan(GOOD)))
    assert cli("runs", "--task", "nope").output.splitlines()[-1] == "none"
    assert cli("runs", "--task", "hello").output.splitlines()[-1] != "none"
    assert cli("runs", "--task", "nope", "--json").output == ""  # scripts get no rows, no words


def test_version_is_an_option_as_well_as_a_command(cli):
    from maintd import __version__

    assert cli("--version").output == cli("version").output == f"{__version__}\n"


def test_serve_refuses_a_port_that_is_not_one(cli, write_plan, monkeypatch):
    monkeypatch.setenv("MAINTD_PORT", "70000")
    result = CliRunner().invoke(app, ["serve", "--plan", str(write_plan(GOOD))])
    assert result.exit_code == 2
    assert "Invalid value for '--port'" in result.output


def test_serve_and_the_queries_say_in_one_line_that_the_database_cannot_be_reached(write_plan, tmp_path):
    closed = free_port()  # nothing listens there
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAINTD_")}
    env |= {"MAINTD_DATABASE_URL": f"postgresql://maintd@127.0.0.1:{closed}/maintd", "HOME": str(tmp_path)}
    said = (
        f"error: cannot open or upgrade the database postgresql+psycopg://maintd@127.0.0.1:{closed}/maintd: "
    )
    served = run_cli("serve", "--plan", str(write_plan(GOOD)), "--port", str(free_port()), env=env)
    listed = run_cli("incident", "list", env=env)
    for done, status in ((served, 2), (listed, 1)):
        assert done.returncode == status, done.stderr
        [line] = done.stderr.strip().splitlines()
        assert line.startswith(said + "connection failed: ") and line.endswith("Connection refused"), line


def test_serve_and_the_queries_refuse_a_database_url_they_cannot_use(cli, write_plan, monkeypatch):
    monkeypatch.setenv("MAINTD_DATABASE_URL", "mysql://app:s3cret@db/app")
    for args, code in ((["serve", "--plan", str(write_plan(GOOD))], 2), (["tasks"], 1)):
        result = CliRunner().invoke(app, args)
        assert result.exit_code == code, result.output
        assert "unsupported database URL (mysql)" in result.output
        assert "s3cret" not in result.output


def test_runs_refuses_a_status_that_no_run_can_have(cli, write_plan):
    cli("run", "hello", "--plan", str(write_plan(GOOD)))
    result = CliRunner().invoke(app, ["runs", "--status", "okay"])
    assert result.exit_code == 2
    assert "--status: 'okay' is not one of ok, warning, critical, unknown, running" in result.output
    assert [
        json.loads(line)["status"] for line in cli("runs", "--status", "ok", "--json").output.splitlines()
    ] == ["ok"]
