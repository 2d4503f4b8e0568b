"""The mcp kind against real MCP servers: mcp-server-time over stdio, an SDK server over streamable HTTP
(tools/list paged), and tiny broken stdio servers (tests/mcp_support/)."""

from __future__ import annotations

import asyncio
import json
import re
import select
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

import maintd.checks.mcp.probe  # noqa: F401  (the SDK's import, 0.5 s, kept out of the timed checks)
from maintd.checks.base import CheckResult, Status
from maintd.checks.mcp import HANDSHAKE_VERSIONS, MODERN_VERSIONS, PROTOCOLS, McpConfig
from maintd.cli import app
from maintd.plan.models import Target
from maintd.registry import Registry
from tests.conftest import run
from tests.kinds import make_target, run_kind
from tests.processes import dies

ROOT = Path(__file__).resolve().parent.parent
SUPPORT = Path(__file__).resolve().parent / "mcp_support"
TIME_SERVER = str(Path(sys.executable).parent / "mcp-server-time")
TOKEN = "s3cret-token"


def stdio_target(command: str, *args: str, **connection: Any) -> Target:
    return make_target(kind="mcp_server", connection={"command": command, "args": list(args), **connection})


def script(name: str, *args: str) -> Target:
    return stdio_target(sys.executable, str(SUPPORT / name), *args)


TIME = stdio_target(TIME_SERVER, "--local-timezone", "UTC")


def check(target: Target, timeout: float = 20, dry_run: bool = False, **params: Any) -> CheckResult:
    return run(run_kind("mcp", params, target, timeout=timeout, dry_run=dry_run))  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def http_url() -> Iterator[str]:
    """The SDK's MCPServer over streamable HTTP, 12 tools listed 5 per page, behind a bearer token."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.mcp_support.http_server", "--page-size", "5", "--token", TOKEN],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert proc.stdout is not None
        ready, _, _ = select.select([proc.stdout], [], [], 30)
        assert ready, "the MCP test server did not start within 30 s"
        yield f"http://127.0.0.1:{int(proc.stdout.readline())}/mcp"
    finally:
        proc.kill()
        proc.wait(10)
        if proc.stdout is not None:
            proc.stdout.close()


@pytest.fixture
def http_target(http_url: str, monkeypatch: pytest.MonkeyPatch) -> Target:
    monkeypatch.setenv("MAINTD_TEST_MCP_TOKEN", TOKEN)
    return make_target(
        kind="mcp_server", connection={"url": http_url}, secrets={"token": "env:MAINTD_TEST_MCP_TOKEN"}
    )


# -- a real server over stdio --------------------------------------------------------------------------


def test_mcp_server_time_over_stdio_speaks_the_modern_era_by_default():
    result = check(TIME, expect_tools=["get_current_time", "convert_time"], min_tools=2)
    assert result.status is Status.ok, result.output
    first = result.output.splitlines()[0]
    assert re.fullmatch(r"mcp-time [\d.]+: protocol 2026-07-28 \(modern\), 2 tools, [\d.]+ s", first)
    assert "protocol: 2026-07-28 (modern era: server/discover, no initialize, no ping)" in result.output
    assert "tools (2): convert_time, get_current_time" in result.output
    assert result.metrics["modern"] == 1.0 and result.metrics["tools"] == 2.0
    assert {"connect_time", "discover_time", "tools_list_time", "time"} <= set(result.metrics)
    assert "ping_time" not in result.metrics and "initialize_time" not in result.metrics
    assert dies(_pid(result)), "the server outlived its check"


def test_legacy_mode_does_the_handshake_and_pings():
    result = check(TIME, protocol="legacy")
    assert result.status is Status.ok, result.output
    assert "protocol 2025-11-25 (handshake)" in result.output
    assert "latency: connect" in result.output and ", initialize " in result.output
    assert ", ping " in result.output
    assert result.metrics["modern"] == 0.0 and "ping_time" in result.metrics


def test_a_pinned_handshake_version_is_what_the_server_must_answer():
    result = check(TIME, protocol="2025-06-18")
    assert result.status is Status.ok, result.output
    assert "protocol: 2025-06-18 (handshake era" in result.output


def test_a_smoke_call_must_succeed_and_a_dry_run_skips_it():
    call = {"name": "convert_time", "arguments": {"source_timezone": "UTC", "time": "25:99"}}
    bad = check(TIME, call_tool=call)
    assert bad.status is Status.critical
    assert bad.output.startswith("tools/call convert_time returned an error:")
    assert "call_time" in bad.metrics
    dry = check(TIME, call_tool=call, dry_run=True)
    assert dry.status is Status.ok
    assert "dry run: did not call convert_time" in dry.output and "call_time" not in dry.metrics


def test_missing_expected_tools_are_critical_and_named():
    result = check(TIME, expect_tools=["get_current_time", "delete_everything"])
    assert result.status is Status.critical
    assert result.output.startswith("missing expected tools: delete_everything (stdio ")
    assert "tools (2): convert_time, get_current_time" in result.output


# -- broken stdio servers ------------------------------------------------------------------------------


def test_a_server_that_exits_at_once_is_critical_with_its_exit_code_and_stderr():
    result = check(script("exits_at_once.py"))
    assert result.status is Status.critical
    assert result.output.startswith("server/discover: the server exited with code 3 (stdio ")
    assert result.output.endswith("starting time-keeper...\nfatal: TIMEKEEPER_API_KEY is not set")


def test_a_server_that_never_answers_ends_at_the_deadline_with_its_process_group_killed(tmp_path):
    pids = tmp_path / "pids"
    started = time.monotonic()
    result = check(script("never_answers.py", str(pids)), timeout=2)
    took = time.monotonic() - started
    assert result.status is Status.critical
    assert result.output.startswith("no answer to server/discover within 1.8 s (the run's deadline)")
    assert "listening (but never answering)" in result.output
    assert took < 5, f"the check took {took:.1f} s with a 2 s timeout"
    server, child = map(int, pids.read_text().split())
    assert dies(server) and dies(child), "a process of the server's group survived the check"


def test_cancelling_a_check_kills_the_servers_process_group(tmp_path):
    pids = tmp_path / "pids"

    async def cancel_midway() -> None:
        task = asyncio.ensure_future(run_kind("mcp", {}, script("never_answers.py", str(pids)), timeout=60))
        for _ in range(1000):
            if pids.exists():
                break
            await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    run(cancel_midway())
    server, child = map(int, pids.read_text().split())
    assert dies(server) and dies(child), "a process of the server's group survived the cancelled check"


def test_garbage_on_stdout_is_a_protocol_error_naming_the_line():
    result = check(script("garbage.py"))
    assert result.status is Status.critical
    assert result.output.startswith(
        "server/discover: the server wrote to stdout what is not JSON-RPC: "
        "not JSON: 'Server v1.0 ready, waiting for clients!'"
    )


def test_a_handshake_only_server_is_reached_by_the_fallback_and_its_tools_list_error_is_critical():
    result = check(script("broken_tools.py"))
    assert result.status is Status.critical
    assert result.output.startswith("tools/list: error -32603 database is down (stdio ")
    assert "protocol: 2025-06-18 (handshake era: initialize, ping)" in result.output
    assert "server: broken-tools 0.9" in result.output
    assert "note: server/discover: error -32601 Method not found: handshake era" in result.output
    assert result.output.endswith("tools/list: cannot open the tool registry: database is down")
    assert {"discover_time", "initialize_time", "ping_time"} <= set(result.metrics)


def test_a_32022_naming_only_handshake_versions_falls_back_to_the_handshake():
    result = check(script("versions.py", "2025-03-26"))
    assert result.status is Status.ok, result.output
    assert "protocol: 2025-03-26 (handshake era" in result.output
    assert (
        "note: server/discover at 2026-07-28: unsupported protocol version; the server supports 2025-03-26"
    ) in result.output


def test_a_32022_naming_only_unknown_modern_versions_is_critical():
    result = check(script("versions.py", "2027-03-01"))
    assert result.status is Status.critical
    assert result.output.startswith(
        "no protocol version in common: the server supports 2027-03-01; maintd speaks 2024-11-05, "
    )


def test_a_pinned_version_the_server_does_not_speak_is_critical():
    modern = check(script("broken_tools.py"), protocol="2026-07-28")
    assert modern.output.startswith("server/discover: error -32601 Method not found (stdio ")
    handshake = check(script("broken_tools.py"), protocol="2025-11-25")
    assert handshake.output.startswith(
        "initialize: the server answered protocol 2025-06-18, not the pinned 2025-11-25"
    )
    assert modern.status is handshake.status is Status.critical


def test_a_program_that_cannot_start_is_critical():
    result = check(stdio_target("/nonexistent/mcp-server"))
    assert result.status is Status.critical
    assert result.output.startswith("cannot start /nonexistent/mcp-server: No such file or directory")


def test_the_stderr_tail_is_capped():
    result = check(script("exits_at_once.py"), stderr_limit=20)
    assert result.output.endswith("\n…_API_KEY is not set")


def test_the_server_gets_only_a_safe_environment_plus_its_own(monkeypatch):
    monkeypatch.setenv("MAINTD_SECRET_THING", "do-not-leak")
    monkeypatch.setenv("MAINTD_TEST_API_KEY", "k-123")
    code = "import os, sys; sys.stderr.write(repr(sorted(os.environ))); sys.exit(1)"
    target = make_target(
        kind="mcp_server",
        connection={"command": sys.executable, "args": ["-c", code], "env": {"FROM_PLAN": "1"}},
        secrets={"key": "env:MAINTD_TEST_API_KEY"},
    )
    result = check(target, env_secrets={"API_KEY": "key"})
    assert "'FROM_PLAN'" in result.output and "'API_KEY'" in result.output and "'PATH'" in result.output
    assert "MAINTD_SECRET_THING" not in result.output and "k-123" not in result.output


# -- a real server over streamable HTTP ----------------------------------------------------------------


def test_http_auto_negotiates_the_modern_era_and_follows_tools_pagination(http_target):
    result = check(http_target, bearer_secret="token", expect_tools=["echo", "filler_09"], min_tools=12)
    assert result.status is Status.ok, result.output
    assert result.output.splitlines()[0].startswith(
        "maintd-test-server 1.2.3: protocol 2026-07-28 (modern), 12 tools,"
    )
    assert "tools (12 in 3 pages): add, echo, fail, filler_01," in result.output
    assert result.metrics["tools_pages"] == 3.0


def test_http_legacy_does_the_handshake_and_pages_too(http_target):
    result = check(http_target, bearer_secret="token", protocol="legacy")
    assert result.status is Status.ok, result.output
    assert "protocol: 2025-11-25 (handshake era: initialize, ping)" in result.output
    assert result.metrics["tools"] == 12.0 and "ping_time" in result.metrics


def test_http_without_the_bearer_token_is_critical_with_the_status(http_target):
    result = check(http_target)
    assert result.status is Status.critical
    assert result.output.startswith(
        "initialize: HTTP 401 Unauthorized (error -32603 Server returned an error response)"
    )
    assert "note: server/discover: HTTP 401 Unauthorized" in result.output
    assert TOKEN not in result.output


def test_http_smoke_calls(http_target):
    ok = check(http_target, bearer_secret="token", call_tool={"name": "add", "arguments": {"a": 2, "b": 3}})
    assert ok.status is Status.ok, ok.output
    assert "tools/call add: ok (5)" in ok.output
    failed = check(http_target, bearer_secret="token", call_tool={"name": "fail"})
    assert failed.status is Status.critical
    assert failed.output.startswith("tools/call fail returned an error: ")
    unknown = check(http_target, bearer_secret="token", call_tool={"name": "nope"})
    assert unknown.status is Status.critical


def test_latency_thresholds_make_a_slow_server_a_warning_or_critical(http_target):
    warn = check(http_target, bearer_secret="token", warn_latency=0)
    assert warn.status is Status.warning
    assert warn.output.splitlines()[0].endswith(", slower than 0 s")
    assert check(http_target, bearer_secret="token", warn_latency=0, crit_latency="1ms").status is (
        Status.critical
    )
    assert check(http_target, bearer_secret="token", warn_latency="30s").status is Status.ok


def test_an_http_server_stuck_mid_conversation_ends_at_the_deadline(http_target):
    stuck = http_target.model_copy(
        update={"connection": {**http_target.connection, "headers": {"X-Test-Hang": "tools/list"}}}
    )
    started = time.monotonic()
    result = check(stuck, timeout=2, bearer_secret="token", protocol="legacy")
    took = time.monotonic() - started
    assert result.status is Status.critical
    assert result.output.startswith("no answer to tools/list within 1.8 s (the run's deadline)")
    assert "protocol: 2025-11-25 (handshake era" in result.output
    assert took < 5, f"the check took {took:.1f} s with a 2 s timeout (ending the session hung?)"


def test_an_unreachable_http_server_is_critical():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again: nothing listens there
    target = make_target(kind="mcp_server", connection={"url": f"http://127.0.0.1:{port}/mcp"})
    result = check(target)
    assert result.status is Status.critical
    assert result.output.startswith(f"server/discover: cannot reach http://127.0.0.1:{port}/mcp: ")


# -- config ----------------------------------------------------------------------------------------------


def test_a_target_without_command_or_url_is_unknown():
    result = check(make_target(kind="mcp_server", connection={"path": "/tmp"}))
    assert result.status is Status.unknown
    assert "has neither command (stdio) nor url" in result.output


def test_the_protocol_param_takes_only_known_versions():
    assert McpConfig.model_validate({"protocol": "2025-03-26"}).protocol == "2025-03-26"
    with pytest.raises(ValueError, match="Input should be 'auto', 'legacy', '2024-11-05'"):
        McpConfig.model_validate({"protocol": "2027-01-01"})


def test_the_known_versions_are_the_sdks():
    from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS, MODERN_PROTOCOL_VERSIONS

    assert (HANDSHAKE_VERSIONS, MODERN_VERSIONS) == (HANDSHAKE_PROTOCOL_VERSIONS, MODERN_PROTOCOL_VERSIONS)
    assert ("auto", "legacy", *HANDSHAKE_VERSIONS, *MODERN_VERSIONS) == PROTOCOLS


def test_only_a_tool_call_makes_the_check_an_action():
    kind = Registry.default().get("mcp")
    assert kind.changes(McpConfig()) is False
    assert kind.changes(McpConfig.model_validate({"call_tool": {"name": "x"}})) is True


# -- CLI -------------------------------------------------------------------------------------------------


PLAN = f"""
    targets:
      - name: clock
        kind: mcp_server
        description: the time server
        connection: {{command: {TIME_SERVER}, args: [--local-timezone, UTC]}}
      - name: dead
        kind: mcp_server
        connection: {{command: {sys.executable}, args: [{SUPPORT / "exits_at_once.py"}]}}
      - name: web
        kind: service
        connection: {{url: "http://127.0.0.1:1/"}}
    tasks:
      - name: clock-health
        kind: mcp
        targets: [clock]
        schedule: {{every: 5m}}
        params: {{expect_tools: [get_current_time], protocol: legacy}}
      - name: web-up
        kind: http
        targets: [web]
        schedule: {{every: 5m}}
"""


@pytest.fixture
def cli(sqlite_store, monkeypatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("MAINTD_DATABASE_URL", sqlite_store.url)
    monkeypatch.delenv("MAINTD_PLAN", raising=False)
    runner = CliRunner()

    def invoke(*args: str):  # type: ignore[no-untyped-def]
        return runner.invoke(app, list(args), catch_exceptions=False)

    return invoke


def test_cli_health_check_runs_the_targets_mcp_task_records_it_and_exits_by_status(cli, write_plan):
    plan = str(write_plan(PLAN))
    ok = cli("mcp", "health-check", "clock", "--plan", plan)
    assert ok.exit_code == 0, ok.output
    assert "ok  mcp health-check clock (task clock-health" in ok.output
    assert "protocol: 2025-11-25 (handshake era: initialize, ping)" in ok.output
    assert "server: mcp-time" in ok.output and "tools (2): convert_time, get_current_time" in ok.output
    runs = [json.loads(line) for line in cli("runs", "--json").output.splitlines()]
    assert [(r["task"], r["target"], r["status"], r["trigger"]) for r in runs] == [
        ("clock-health", "clock", "ok", "manual")
    ]
    listed = [json.loads(line) for line in cli("mcp", "list", "--plan", plan, "--json").output.splitlines()]
    assert [(s["name"], s["transport"]) for s in listed] == [("clock", "stdio"), ("dead", "stdio")]
    assert listed[0]["tasks"] == [
        {
            "task": "clock-health",
            "last_status": "ok",
            "last_finished_at": listed[0]["tasks"][0]["last_finished_at"],
        }
    ]
    assert listed[1]["tasks"] == []


def test_cli_health_check_without_a_task_uses_default_params_and_says_so(cli, write_plan):
    result = cli("mcp", "health-check", "dead", "--plan", str(write_plan(PLAN)), "--json")
    assert result.exit_code == 2
    body = json.loads(result.output)
    assert body["task"] is None and body["recorded"] is False and body["status"] == "critical"
    assert "the server exited with code 3" in body["output"]
    assert cli("runs", "--json").output == ""


def test_cli_names_what_is_wrong(cli, write_plan):
    plan = str(write_plan(PLAN))
    assert (
        "no target 'nope' in the plan; MCP servers: clock, dead"
        in cli("mcp", "health-check", "nope", "--plan", plan).output
    )
    assert "no plan" in cli("mcp", "list").output
    table = cli("mcp", "list", "--plan", plan).output
    assert "clock" in table and "clock-health" in table and "exits_at_once.py" in table


# -- helpers ---------------------------------------------------------------------------------------------


def _pid(result: CheckResult) -> int:
    match = re.search(r"\(pid (\d+)\)", result.output)
    assert match, result.output
    return int(match.group(1))
