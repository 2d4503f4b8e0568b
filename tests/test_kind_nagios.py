"""The nagios kind: real Debian monitoring plugins on loopback, a misbehaving fake plugin,
and the range and perfdata parsers it shares with the command kind."""

from __future__ import annotations

import asyncio
import json
import math
import os
import re
import signal
import socket
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import ValidationError

from maintd.checks.base import Status
from maintd.checks.command.perfdata import PerfValue, Range, RangeError, parse_items, parse_output
from maintd.checks.nagios import DEFAULT_PLUGIN_DIRS
from tests.conftest import run
from tests.kinds import REGISTRY, make_target, run_kind
from tests.processes import alive, dies
from tests.servers import http_server, sample_app

PLUGINS = Path("/usr/lib/nagios/plugins")
FAKE_SOURCE = Path(__file__).parent / "nagios_support" / "fake_plugin.py"


@pytest.fixture
def fake(tmp_path: Path) -> str:
    """The fake plugin, runnable by path with this interpreter."""
    path = tmp_path / "check_fake"
    body = FAKE_SOURCE.read_text().split("\n", 1)[1]
    path.write_text(f"#!{sys.executable}\n{body}")
    path.chmod(0o755)
    return str(path)


def nagios(plugin: str, *args: str, target=None, **params):  # type: ignore[no-untyped-def]
    return run(run_kind("nagios", {"plugin": plugin, "args": list(args), **params}, target))


def local(**connection):  # type: ignore[no-untyped-def]
    return make_target(connection={"host": "127.0.0.1", **connection})


@pytest.fixture
def listening_port() -> Iterator[int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        yield sock.getsockname()[1]


@pytest.fixture
def closed_port() -> Iterator[int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))  # bound, not listening: connections are refused
        yield sock.getsockname()[1]


# --- real plugins -------------------------------------------------------------------------------


def test_check_tcp_on_a_listening_port_is_ok_with_its_time_in_seconds(listening_port):
    result = nagios(
        "check_tcp", "-H", "{target.host}", "-p", "{target.port}", "-w", "0.5", "-c", "1",
        target=local(port=listening_port),
    )  # fmt: skip
    assert result.status is Status.ok, result.output
    assert result.output.startswith("TCP OK - ")
    assert "|" not in result.output
    assert 0 <= result.metrics["time"] < 0.5
    assert result.metrics["time.warn"] == 0.5
    assert result.metrics["time.crit"] == 1.0
    assert result.metrics["time.max"] == 10.0


def test_check_tcp_on_a_closed_port_is_critical(closed_port):
    result = nagios("check_tcp", "-H", "127.0.0.1", "-p", str(closed_port))
    assert result.status is Status.critical
    assert result.output == f"connect to address 127.0.0.1 and port {closed_port}: Connection refused"


@pytest.mark.parametrize("plugin", ["check_http", "check_curl"])
def test_http_plugins_against_a_real_server_ok_and_404_is_a_warning(plugin):
    async def go(path: str):  # type: ignore[no-untyped-def]
        async with http_server(sample_app()) as base:
            port = base.rsplit(":", 1)[1]
            target = local(port=int(port))
            args = ["-I", "{target.host}", "-p", "{target.port}", "-u", path, "-w", "1", "-c", "2"]
            return await run_kind("nagios", {"plugin": plugin, "args": args, "timeout": "5s"}, target)

    ok = run(go("/ok"))
    assert ok.status is Status.ok, ok.output
    assert re.match(r"HTTP OK: HTTP/1\.[01] 200 OK - \d+ bytes in ", ok.output)
    assert ok.metrics["size"] > 0 and 0 <= ok.metrics["time"] < 1
    assert ok.metrics["time.warn"] == 1.0 and ok.metrics["time.crit"] == 2.0

    missing = run(go("/missing"))
    assert missing.status is Status.warning, missing.output
    assert re.match(r"HTTP WARNING: HTTP/1\.[01] 404 Not Found - ", missing.output)


def test_check_disk_on_root_ok_with_loose_thresholds_in_bytes():
    result = nagios("check_disk", "-w", "1%", "-c", "1%", "-p", "/")
    assert result.status is Status.ok, result.output
    assert result.output.startswith("DISK OK - free space: / ")
    st = os.statvfs("/")
    assert result.metrics["/.max"] == pytest.approx(st.f_blocks * st.f_frsize, rel=0.01)
    assert 0 < result.metrics["/"] < result.metrics["/.warn"] <= result.metrics["/.max"]
    assert "beyond" not in result.output


def test_check_disk_on_root_critical_with_tight_thresholds_notes_the_value_beyond_its_range():
    result = nagios("check_disk", "-w", "99%", "-c", "99%", "-p", "/")
    assert result.status is Status.critical, result.output
    assert result.output.startswith("DISK CRITICAL - free space: / ")
    assert result.metrics["/"] > result.metrics["/.crit"]
    assert "perfdata: /=" in result.output and "B is beyond its critical range" in result.output


def test_check_load_reports_its_three_averages():
    result = nagios("check_load", "-w", "1000,1000,1000", "-c", "2000,2000,2000")
    assert result.status is Status.ok, result.output
    assert result.output.startswith("LOAD OK - total load average: ")
    assert {"load1", "load5", "load15", "load1.warn", "load1.crit", "load1.min"} <= set(result.metrics)
    assert result.metrics["load15.crit"] == 2000.0


@pytest.mark.parametrize(
    ("code", "status", "prefix"),
    [
        (0, Status.ok, "OK"),
        (1, Status.warning, "WARNING"),
        (2, Status.critical, "CRITICAL"),
        (3, Status.unknown, "UNKNOWN"),
    ],
)
def test_check_dummy_exit_codes_and_text(code, status, prefix):
    result = nagios("check_dummy", str(code), "it's a $(test); rm -rf /")
    assert result.status is status
    assert result.output == f"{prefix}: it's a $(test); rm -rf /"


def test_a_plugin_without_a_timeout_option_runs_with_timeout_option_null():
    result = nagios("check_dummy", "0", "fine", timeout="5s", timeout_option=None)
    assert (result.status, result.output) == (Status.ok, "OK: fine")
    refused = nagios("check_dummy", "0", "fine", timeout="5s")  # check_dummy has no -t
    assert refused.status is Status.unknown
    assert "must be an integer" in refused.output


# --- finding the plugin -------------------------------------------------------------------------


def test_a_missing_plugin_is_unknown_with_where_it_was_looked_for():
    result = nagios("check_nonexistent")
    assert result.status is Status.unknown
    assert result.output == (
        "plugin check_nonexistent not found in "
        "/usr/lib/nagios/plugins, /usr/lib/monitoring-plugins, /usr/local/nagios/libexec"
    )


def test_a_missing_absolute_plugin_is_unknown():
    result = nagios("/nonexistent/check_thing")
    assert (result.status, result.output) == (
        Status.unknown,
        "plugin /nonexistent/check_thing does not exist",
    )


def test_a_plugin_that_is_not_executable_is_unknown(tmp_path):
    plugin = tmp_path / "check_flat"
    plugin.write_text("#!/bin/sh\necho OK\n")
    plugin.chmod(0o644)
    result = nagios(str(plugin))
    assert result.status is Status.unknown
    assert result.output == f"plugin {plugin} is not executable (mode 0644)"
    by_name = nagios("check_flat", plugin_dirs=[str(tmp_path)])
    assert by_name.output == f"plugin {plugin} is not executable (mode 0644)"


def test_a_directory_is_not_a_plugin(tmp_path):
    result = nagios(str(tmp_path))
    assert (result.status, result.output) == (Status.unknown, f"plugin {tmp_path} is not a file")


def test_plugin_dirs_are_searched_in_order_skipping_non_executables(tmp_path, fake):
    first, second = tmp_path / "first", tmp_path / "second"
    first.mkdir()
    second.mkdir()
    (first / "check_fake").write_text("not executable")
    os.link(fake, second / "check_fake")
    result = nagios("check_fake", "args", "x", plugin_dirs=[str(first), str(second)])
    assert result.status is Status.ok, result.output
    assert result.output == 'FAKE OK - args ["args", "x"]'


def test_the_default_plugin_dirs_include_debians():
    assert DEFAULT_PLUGIN_DIRS[0] == "/usr/lib/nagios/plugins"


@pytest.mark.parametrize(
    "bad",
    [
        {"plugin": "plugins/check_tcp"},
        {"plugin": ".."},
        {"plugin": ""},
        {"plugin": "check_tcp", "plugin_dirs": ["relative/dir"]},
        {"plugin": "check_tcp", "timeout": "500ms"},
        {"plugin": "check_tcp", "args": "-H localhost"},
        {"plugin": "check_tcp", "shell": True},
    ],
)
def test_bad_params_are_rejected_by_the_kinds_model(bad):
    with pytest.raises(ValidationError):
        REGISTRY.get("nagios").config.model_validate(bad)


# --- arguments, timeout option, environment -------------------------------------------------------


def test_args_are_substituted_one_argument_each_never_a_shell(fake):
    target = make_target(connection={"path": "/tmp/it's; rm -rf /"})
    result = nagios(fake, "args", "{target.path}", "{target.name}", "{task.name}", target=target)
    assert json.loads(result.output.removeprefix("FAKE OK - args ")) == [
        "args",
        "/tmp/it's; rm -rf /",
        "t1",
        "probe",
    ]


def test_an_unknown_placeholder_is_unknown_with_the_reason(fake):
    result = nagios(fake, "args", "{target.port}")
    assert result.status is Status.unknown
    assert "no connection key 'port'" in result.output


def test_the_timeout_goes_to_the_plugin_as_its_timeout_option_in_whole_seconds(fake):
    argv = lambda **p: json.loads(nagios(fake, "args", **p).output.removeprefix("FAKE OK - args "))  # noqa: E731
    assert argv(timeout="2.5s") == ["-t", "3", "args"]
    assert argv(timeout="1m", timeout_option="--timeout") == ["--timeout", "60", "args"]
    assert argv(timeout="5s", timeout_option=None) == ["args"]
    assert argv() == ["args"]


def test_plugins_run_in_the_c_locale_with_extra_environment(fake):
    assert nagios(fake, "env", env={"MAINTD_X": "42"}).output == "FAKE OK - LC_ALL=C MAINTD_X=42"
    assert nagios(fake, "env", env={"LC_ALL": "C.UTF-8"}).output == "FAKE OK - LC_ALL=C.UTF-8 MAINTD_X=None"


# --- a misbehaving plugin -------------------------------------------------------------------------


def test_garbage_perfdata_is_ignored_with_a_note_never_a_crash(fake):
    result = nagios(fake, "garbage")
    assert result.status is Status.ok
    lines = result.output.splitlines()
    assert lines[0] == "FAKE OK - garbage follows"
    assert result.metrics == {"c": 2.0, "ok": 0.003, "ok.warn": 0.001, "ok.crit": 0.002}
    assert "perfdata: ok=3ms is beyond its critical range 2" in lines
    assert "perfdata: ignored '===': no label" in lines
    assert "perfdata: ignored 'a=;': no value" in lines
    assert "perfdata: ignored 'b=1,5': value '1,5' is not a number" in lines
    assert "perfdata: in 'c=2;x;;;': warn threshold dropped: 'x' is not a number" in lines
    assert "perfdata: ignored 'bare': not label=value" in lines
    assert "perfdata: ignored 'd=5;1;2;3;4;5;6': more than value;warn;crit;min;max" in lines


def test_invalid_utf8_is_decoded_with_replacement(fake):
    result = nagios(fake, "utf8")
    assert result.status is Status.ok
    assert result.output == "FAKE OK - café \ufffd\ufffd broken\nlong \ufffd line"
    assert result.metrics == {"t": 0.001}


def test_ten_megabytes_of_output_are_capped_and_the_plugin_still_finishes(fake):
    started = time.monotonic()
    result = nagios(fake, "flood", output_limit=4096)
    assert time.monotonic() - started < 10
    assert result.status is Status.warning
    assert result.output.startswith("FAKE WARNING - flood\nxxxx")
    assert result.output.endswith("[output truncated at 4096 bytes]")
    assert len(result.output) < 4096 + 200
    assert result.metrics == {"size": 10e6}


def test_an_exit_code_beyond_3_is_unknown_with_the_reason(fake):
    result = nagios(fake, "exit", "7")
    assert result.status is Status.unknown
    assert result.output == "exit code 7 is not a plugin status (0-3): FAKE - exiting 7"


def test_death_by_signal_is_unknown_with_the_signal(fake):
    result = nagios(fake, "signal")
    assert result.status is Status.unknown
    assert result.output == "killed by signal 15 (SIGTERM): FAKE - about to die"


def test_a_hung_plugin_and_its_child_are_killed_at_its_timeout(fake, tmp_path):
    pidfile = tmp_path / "child.pid"
    started = time.monotonic()
    result = nagios(fake, "hang", str(pidfile), timeout="1s")
    elapsed = time.monotonic() - started
    assert result.status is Status.unknown
    assert result.output == "timed out after 2 s; its process group was killed: FAKE - hanging"
    assert 1.9 <= elapsed < 4, elapsed  # 1 s for the plugin's own -t, 1 s of grace
    assert dies(int(pidfile.read_text())), "the plugin's child survived its timeout"


def test_a_cancelled_run_kills_the_plugin_and_its_child(fake, tmp_path):
    pidfile = tmp_path / "child.pid"

    async def cancel_midway() -> None:
        task = asyncio.ensure_future(run_kind("nagios", {"plugin": fake, "args": ["hang", str(pidfile)]}))
        for _ in range(1000):
            if pidfile.exists():
                break
            await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    run(cancel_midway())
    assert dies(int(pidfile.read_text())), "the plugin's child survived the cancelled run"


def test_a_daemonised_grandchild_holding_the_output_open_does_not_hold_the_run(fake, tmp_path):
    pidfile = tmp_path / "daemon.pid"
    started = time.monotonic()
    try:
        result = nagios(fake, "escape", str(pidfile), timeout="1s")
        elapsed = time.monotonic() - started
    finally:
        if pidfile.exists():
            daemon = int(pidfile.read_text())
            if alive(daemon):
                os.kill(daemon, signal.SIGKILL)
    assert result.status is Status.unknown
    assert result.output.startswith("timed out after 2 s")
    assert elapsed < 5, elapsed


# --- threshold ranges -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "start", "end", "inside", "alerting", "quiet"),
    [
        ("10", 0, 10, False, [-1, 10.5, 11], [0, 5, 10]),
        ("10:", 10, math.inf, False, [9.99, -5], [10, 1e12]),
        ("~:10", -math.inf, 10, False, [10.01, 1e9], [-1e9, 0, 10]),
        ("10:20", 10, 20, False, [9, 21], [10, 15, 20]),
        ("@10:20", 10, 20, True, [10, 15, 20], [9, 21]),
        ("@10", 0, 10, True, [0, 10], [-1, 11]),
        ("-5:5", -5, 5, False, [-6, 6], [-5, 0, 5]),
        (":5", 0, 5, False, [-1, 6], [0, 5]),
        ("~:", -math.inf, math.inf, False, [], [-1e300, 0, 1e300]),
        ("1e3", 0, 1000, False, [1001], [1000]),
        ("0.5", 0, 0.5, False, [0.6], [0.5]),
        (" 10 ", 0, 10, False, [11], [10]),
    ],
)
def test_ranges_follow_the_plugin_guidelines(text, start, end, inside, alerting, quiet):
    rng = Range.parse(text)
    assert (rng.start, rng.end, rng.inside) == (start, end, inside)
    assert [v for v in alerting if rng.alerts(v)] == alerting
    assert [v for v in quiet if rng.alerts(v)] == []


@pytest.mark.parametrize(
    ("text", "bound"), [("10", 10), ("0.5", 0.5), ("10:", None), ("@10", None), ("0:10", None)]
)
def test_a_range_has_a_single_bound_only_in_its_plain_form(text, bound):
    assert Range.parse(text).bound == bound


@pytest.mark.parametrize(
    "text", ["", "@", "abc", "20:10", "1:2:3", "~", "10:~", "nan", "inf", "1,5", "@@1", "-5"]
)
def test_bad_ranges_are_rejected(text):
    with pytest.raises(RangeError):
        Range.parse(text)


# --- performance data -------------------------------------------------------------------------------


def _r(text: str) -> Range:
    return Range.parse(text)


@pytest.mark.parametrize(
    ("perf", "expected"),
    [
        (
            "time=0.000532s;0.500000;1.000000;0.000000;10.000000",
            PerfValue("time", 0.000532, "s", _r("0.500000"), _r("1.000000"), 0.0, 10.0, "0.000532s"),
        ),
        ("'b c'=4.5ms", PerfValue("b c", 4.5, "ms", printed="4.5ms")),
        ("'it''s'=7", PerfValue("it's", 7.0, printed="7")),
        ("'a=b'=1", PerfValue("a=b", 1.0, printed="1")),
        ("x=U", PerfValue("x", None, printed="U")),
        ("x=U;1;2", PerfValue("x", None, "", _r("1"), _r("2"), printed="U")),
        ("size=221B;;;0;", PerfValue("size", 221.0, "B", min=0.0, printed="221B")),
        (
            "load1=0.300;100.000;200.000;0;",
            PerfValue("load1", 0.3, "", _r("100.000"), _r("200.000"), 0.0, None, "0.300"),
        ),
        ("a=1;10:;~:5", PerfValue("a", 1.0, "", _r("10:"), _r("~:5"), printed="1")),
        ("a=15;@10:20;@0:30", PerfValue("a", 15.0, "", _r("@10:20"), _r("@0:30"), printed="15")),
        ("a=-1e3", PerfValue("a", -1000.0, printed="-1e3")),
        ("a=+.5", PerfValue("a", 0.5, printed="+.5")),
        ("p=50%;80;90;0;100", PerfValue("p", 50.0, "%", _r("80"), _r("90"), 0.0, 100.0, "50%")),
        ("n=123c", PerfValue("n", 123.0, "c", printed="123c")),
        ("w=5kg", PerfValue("w", 5.0, "kg", printed="5kg")),
        ("a=1;;;;", PerfValue("a", 1.0, printed="1")),
        ("a=1;;;;;", PerfValue("a", 1.0, printed="1")),
    ],
)
def test_perfdata_items_in_every_form(perf, expected):
    assert parse_items(perf) == ([expected], [])


@pytest.mark.parametrize(
    ("perf", "note"),
    [
        ("===", "ignored '===': no label"),
        ("=5", "ignored '=5': no label"),
        ("''=5", "ignored \"''=5\": no label"),
        ("a=", "ignored 'a=': no value"),
        ("a=;", "ignored 'a=;': no value"),
        ("a=abc", "ignored 'a=abc': value 'abc' is not a number"),
        ("a=1,5", "ignored 'a=1,5': value '1,5' is not a number"),
        ("a=1.2.3", "ignored 'a=1.2.3': value '1.2.3' is not a number"),
        ("a=5s;1;2;3;4;5", "ignored 'a=5s;1;2;3;4;5': more than value;warn;crit;min;max"),
        ("a=5k=g", "ignored 'a=5k=g': value '5k=g' is not a number"),
        ("'unclosed=1 b=2", 'ignored "\'unclosed=1": not label=value'),
        ("lonely", "ignored 'lonely': not label=value"),
        ("'q' =1", "ignored \"'q'\": not label=value"),
        ("a=nan", "ignored 'a=nan': value 'nan' is not a number"),
        ("a=5 \u00e9\u00e9", "ignored 'éé': not label=value"),
    ],
)
def test_garbage_perfdata_is_left_out_with_a_note(perf, note):
    values, garbage = parse_items(perf)
    assert note in garbage
    assert all(v.label not in ("", "unclosed") for v in values)


@pytest.mark.parametrize(
    ("perf", "kept", "note"),
    [
        (
            "a=1;x",
            PerfValue("a", 1.0, printed="1"),
            "in 'a=1;x': warn threshold dropped: 'x' is not a number",
        ),
        (
            "a=1;;20:10",
            PerfValue("a", 1.0, printed="1"),
            "in 'a=1;;20:10': crit threshold dropped: range '20:10' starts above its end",
        ),
        ("a=1;;;z", PerfValue("a", 1.0, printed="1"), "in 'a=1;;;z': min dropped: 'z' is not a number"),
        (
            "a=1s;;;;0s",
            PerfValue("a", 1.0, "s", printed="1s"),
            "in 'a=1s;;;;0s': max dropped: '0s' is not a number",
        ),
    ],
)
def test_a_bad_threshold_is_dropped_and_the_value_kept(perf, kept, note):
    assert parse_items(perf) == ([kept], [note])


@pytest.mark.parametrize(
    ("perf", "metrics"),
    [
        ("t=1500ms;1000;2000;0", {"t": 1.5, "t.warn": 1.0, "t.crit": 2.0, "t.min": 0.0}),
        ("t=250us", {"t": 0.00025}),
        ("t=2s", {"t": 2.0}),
        ("b=1B", {"b": 1.0}),
        ("b=2KB", {"b": 2000.0}),
        ("b=2kB", {"b": 2000.0}),
        ("b=2MB", {"b": 2e6}),
        ("b=2GB", {"b": 2e9}),
        ("b=2TB", {"b": 2e12}),
        ("b=2KiB", {"b": 2048.0}),
        ("b=1.5MiB;;;0;4", {"b": 1.5 * 2**20, "b.min": 0.0, "b.max": 4 * 2**20}),
        ("b=1GiB", {"b": 2.0**30}),
        ("p=55%;80;90;0;100", {"p": 55.0, "p.warn": 80.0, "p.crit": 90.0, "p.min": 0.0, "p.max": 100.0}),
        ("c=17c", {"c": 17.0}),
        ("w=5kg;10", {"w": 5.0, "w.warn": 10.0}),
        ("a=5;10:;@1:2", {"a": 5.0}),
        ("u=U;1;2", {}),
    ],
)
def test_metrics_are_in_base_units_with_plain_thresholds(perf, metrics):
    out = parse_output(f"OK | {perf}").metrics()
    assert out == pytest.approx(metrics) and set(out) == set(metrics)


def test_perfdata_on_the_first_line_and_in_long_output():
    text = "DISK OK - fine | a=1\nline two\nline three | b=2ms\nc=3s d=4\nnot perf but ignored\n"
    parsed = parse_output(text)
    assert parsed.summary == "DISK OK - fine"
    assert parsed.long_text == "line two\nline three"
    assert parsed.metrics() == {"a": 1.0, "b": 0.002, "c": 3.0, "d": 4.0}
    assert parsed.garbage == [
        f"ignored {word!r}: not label=value" for word in ("not", "perf", "but", "ignored")
    ]


def test_notes_name_values_beyond_their_ranges_worst_first_and_are_capped():
    parsed = parse_output("X | ok=1;5;10 w=6;5;10 c=11s;5;10 in=15;@10:20 u=U;1;1")
    assert parsed.notes() == [
        "perfdata: w=6 is beyond its warning range 5",
        "perfdata: c=11s is beyond its critical range 10",
        "perfdata: in=15 is beyond its warning range @10:20",
    ]
    many = parse_output("X | " + " ".join(f"g{i}" for i in range(30)))
    assert len(many.notes()) == 11
    assert many.notes()[-1] == "perfdata: 20 more notes left out"
