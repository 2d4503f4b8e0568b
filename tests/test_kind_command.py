"""The command kind: argument lists, Nagios exit codes and perfdata, process groups, dry runs."""

from __future__ import annotations

import asyncio
import sys

import pytest

from maintd.checks.base import Status
from maintd.checks.command.perfdata import parse_perfdata, split_output
from tests.conftest import run
from tests.kinds import make_target, run_kind
from tests.processes import dies


@pytest.mark.parametrize(
    ("code", "status"),
    [(0, Status.ok), (1, Status.warning), (2, Status.critical), (3, Status.unknown), (4, Status.unknown)],
)
def test_exit_codes_map_to_nagios_statuses(code, status):
    result = run(run_kind("command", {"argv": ["sh", "-c", f"echo out; exit {code}"], "read_only": True}))
    assert result.status is status
    assert result.output.endswith("out")


def test_plugin_perfdata_becomes_metrics_and_leaves_the_text():
    out = "DISK OK - free space: / 78277MiB|/=26863468544B;216442024755;243497277849;0;270552530944 time=0.5s"
    result = run(run_kind("command", {"argv": ["printf", "%s\n", out], "read_only": True}))
    assert result.output == "DISK OK - free space: / 78277MiB"
    assert result.metrics == {"/": 26863468544.0, "time": 0.5}


@pytest.mark.parametrize(
    ("text", "human", "metrics"),
    [
        ("OK", "OK", {}),
        ("OK | a=1;2;3 'b c'=4.5ms", "OK", {"a": 1.0, "b c": 4.5}),
        ("OK|x=-1e3", "OK", {"x": -1000.0}),
        ("OK | bad=U", "OK", {}),
        ("first\nsecond | y=2\nthird\nz=3", "first\nsecond", {"y": 2.0, "z": 3.0}),
        ("OK | 'it''s'=7", "OK", {"it's": 7.0}),
    ],
)
def test_perfdata_follows_the_plugin_guidelines(text, human, metrics):
    assert split_output(text) == (human, metrics)


def test_perfdata_ignores_garbage():
    assert parse_perfdata("=== ;;; a=;") == {}


def test_placeholders_fill_one_argument_each_never_a_shell():
    target = make_target(connection={"path": "/tmp/it's; rm -rf /"})
    result = run(run_kind("command", {"argv": ["printf", "%s", "{target.path}"], "read_only": True}, target))
    assert result.output == "/tmp/it's; rm -rf /"


def test_an_unknown_placeholder_is_unknown_with_the_reason():
    result = run(run_kind("command", {"argv": ["echo", "{target.nope}"], "read_only": True}))
    assert result.status is Status.unknown
    assert "no connection key 'nope'" in result.output


def test_a_missing_program_is_unknown_not_a_crash():
    result = run(run_kind("command", {"argv": ["/nonexistent/check_thing"], "read_only": True}))
    assert result.status is Status.unknown
    assert "cannot start /nonexistent/check_thing" in result.output


def test_a_dry_run_does_not_execute_a_command_that_changes_things(tmp_path):
    marker = tmp_path / "touched"
    result = run(run_kind("command", {"argv": ["touch", str(marker)]}, dry_run=True))
    assert result.status is Status.ok
    assert "would run" in result.output
    assert not marker.exists()


def test_a_dry_run_runs_the_dry_run_argv_when_given(tmp_path):
    marker = tmp_path / "touched"
    params = {"argv": ["touch", str(marker)], "dry_run_argv": ["echo", "plan: touch {target.name}"]}
    result = run(run_kind("command", params, dry_run=True))
    assert result.output == "plan: touch t1"
    assert not marker.exists()


def test_output_is_capped_and_the_writer_never_blocks():
    params = {
        "argv": ["sh", "-c", "head -c 5000000 /dev/zero | tr '\\0' x; echo; exit 1"],
        "output_limit": 1000,
        "read_only": True,
    }
    result = run(run_kind("command", params))
    assert result.status is Status.warning
    assert result.output.startswith("x" * 100)
    assert result.output.endswith("[output truncated at 1000 bytes]")


def test_cancelling_a_run_kills_its_whole_process_group(tmp_path):
    pidfile = tmp_path / "child.pid"
    script = f"sleep 300 & echo $! > {pidfile}; wait"

    async def cancel_midway() -> int:
        task = asyncio.ensure_future(run_kind("command", {"argv": ["sh", "-c", script], "read_only": True}))
        for _ in range(500):  # until the grandchild exists
            if pidfile.exists() and pidfile.read_text().strip():
                break
            await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return int(pidfile.read_text())

    child = run(cancel_midway())
    assert dies(child), "the background child of the command survived the cancelled run"


def test_a_finished_command_leaves_no_background_children(tmp_path):
    pidfile = tmp_path / "child.pid"
    script = f"(exec sleep 300 >/dev/null 2>&1) & echo $! > {pidfile}; exit 0"
    result = run(run_kind("command", {"argv": ["sh", "-c", script], "read_only": True}))
    assert result.status is Status.ok
    assert dies(int(pidfile.read_text()))


def test_extra_environment_reaches_the_command():
    params = {
        "argv": [sys.executable, "-c", "import os; print(os.environ['MAINTD_X'])"],
        "env": {"MAINTD_X": "42"},
        "read_only": True,
    }
    assert run(run_kind("command", params)).output == "42"


def test_perfdata_notes_garbage_and_values_beyond_their_ranges_keeping_values_as_printed():
    out = "PING OK | rta=4.5ms;2;10 loss=1,5% pl=U"
    result = run(run_kind("command", {"argv": ["printf", "%s\n", out], "read_only": True}))
    assert result.status is Status.ok
    assert result.metrics == {"rta": 4.5}
    assert result.output.splitlines() == [
        "PING OK",
        "perfdata: rta=4.5ms is beyond its warning range 2",
        "perfdata: ignored 'loss=1,5%': value '1,5%' is not a number",
    ]


def test_death_by_a_signal_is_unknown_with_the_signals_name():
    result = run(run_kind("command", {"argv": ["sh", "-c", "echo dying; kill -9 $$"], "read_only": True}))
    assert result.status is Status.unknown
    assert result.output == "killed by signal 9 (SIGKILL): dying"


def test_an_exit_code_beyond_3_names_the_code_before_the_programs_summary():
    result = run(run_kind("command", {"argv": ["sh", "-c", "echo not found; exit 127"], "read_only": True}))
    assert result.status is Status.unknown
    assert result.output == "exit code 127 is not a plugin status (0-3): not found"
