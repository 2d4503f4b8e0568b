"""The security-scan kind with the real pip-audit and bandit, stand-in trivy/grype, real log files."""

from __future__ import annotations

import json
import os
import stat
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from maintd.checks.base import CheckResult, Resources, RunContext, Status
from maintd.clock import FakeClock
from maintd.engine import Engine
from maintd.plan.models import Task
from maintd.store.models import AlertRow, EventRow, RunRow
from maintd.tasks.security import KIND
from maintd.tasks.security.osv import affecting, read_pins
from tests.conftest import T0, run
from tests.kinds import make_target
from tests.security_support.osv_server import osv_api

SUPPORT = Path(__file__).parent / "security_support"
OSV = str(SUPPORT / "osv.json")
DAY = 86_400


class Memory:
    """The memo as the runner keeps it: saved from a finished run, never from a dry run."""

    def __init__(self) -> None:
        self.memo: dict[str, Any] = {}

    async def load(self) -> dict[str, Any]:
        return json.loads(json.dumps(self.memo))

    def save(self, result: CheckResult, dry_run: bool) -> None:
        if result.memo is not None and not dry_run:
            self.memo = json.loads(json.dumps(result.memo))  # JSON values only, as the store keeps it


def scan(
    params: dict[str, Any],
    *,
    memory: Memory | None = None,
    clock: FakeClock | None = None,
    dry_run: bool = False,
    timeout: float = 60,
) -> CheckResult:
    config = KIND.config.model_validate(params)
    task = Task.model_validate(
        {
            "name": "nightly",
            "kind": KIND.name,
            "targets": ["t1"],
            "schedule": {"every": "1d"},
            "params": params,
        }
    )
    clock = clock or FakeClock(T0)
    memory = memory if memory is not None else Memory()

    async def go() -> CheckResult:
        async with Resources.open() as resources:
            deadline = clock.now() + timedelta(seconds=timeout)
            ctx = RunContext(task, make_target(), config, clock, deadline, resources, dry_run)
            ctx.memo = memory.load
            return await KIND.build(config).run(ctx)

    result: CheckResult = run(go())
    memory.save(result, dry_run)
    return result


def requirements(tmp_path: Path, *pins: str, name: str = "requirements.txt") -> str:
    path = tmp_path / name
    path.write_text("# pinned by pip-compile\n" + "".join(f"{pin}\n" for pin in pins))
    return str(path)


def fake_tool(tmp_path: Path, name: str, body: str) -> str:
    """A stand-in scanner: a Python script; ``args`` holds its arguments."""
    folder = tmp_path / "bin"
    folder.mkdir(exist_ok=True)
    path = folder / name
    path.write_text(f"#!{sys.executable}\nimport os, shutil, sys, time\nargs = sys.argv[1:]\n{body}\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return str(path)


def offline(req: str, **extra: Any) -> dict[str, Any]:
    return {"scans": [{"scanner": "pip-audit", "requirements": [req], "vulnerability_file": OSV}], **extra}


# --- dependency scan ------------------------------------------------------------------------


def test_offline_pip_audit_finds_the_vulnerable_pins_and_a_new_critical_makes_the_run_critical(tmp_path):
    req = requirements(
        tmp_path, "jinja2==3.1.2 \\", "    --hash=sha256:00ff", "PyYAML==5.3", "requests==2.32.3"
    )
    result = scan(offline(req))
    assert result.status is Status.critical, result.output
    lines = result.output.splitlines()
    assert lines[0] == "2 open findings (2 new), 0 fixed; 1 critical, 0 high"
    assert lines[1:4] == [
        "new:",
        f"  critical pip-audit GHSA-8q59-q68h-6hv4 pyyaml==5.3 in {req}: Improper Input Validation in PyYAML "
        "(fixed in 5.4)",
        f"  medium pip-audit GHSA-h5c8-rqwp-cp95 jinja2==3.1.2 in {req}: Jinja vulnerable to HTML attribute "
        "injection when passing user input as keys to xmlattr filter (fixed in 3.1.3)",
    ]
    # the withdrawn record and the npm package of the same name never match; requests 2.32.3 is fixed
    assert "withdrawn" not in result.output and "npm" not in result.output
    assert result.metrics["critical"] == 1 and result.metrics["findings_new"] == 2


def test_a_patch_level_fix_is_proposed_and_the_requirement_file_is_left_alone(tmp_path):
    req = requirements(tmp_path, "jinja2==3.1.2", "PyYAML==5.3")
    before = Path(req).read_bytes()
    result = scan(offline(req))
    # jinja2 3.1.2 -> 3.1.3 is a patch; PyYAML 5.3 -> 5.4 is a minor bump: not proposed
    assert [c.as_json() for c in result.changes] == [
        {
            "action": "propose-update",
            "target": f"{req}: jinja2",
            "detail": {
                "package": "jinja2",
                "from": "3.1.2",
                "to": "3.1.3",
                "fixes": ["GHSA-h5c8-rqwp-cp95"],
                "file": req,
            },
        }
    ]
    assert "proposed patch updates (not applied):" in result.output
    assert f"  {req}: jinja2 3.1.2 -> 3.1.3 (fixes GHSA-h5c8-rqwp-cp95)" in result.output
    assert Path(req).read_bytes() == before


def test_the_real_pip_audit_runs_offline_against_a_loopback_osv_api(tmp_path):
    req = requirements(tmp_path, "jinja2==3.1.2", "requests==2.32.3")
    with osv_api(OSV) as (url, queries):
        params = {"scans": [{"scanner": "pip-audit", "requirements": [req], "osv_url": url}]}
        result = scan(params)
    assert {q["package"]["name"] for q in queries} == {"jinja2", "requests"}
    # pip-audit's JSON carries no severity: unrated_severity (high) makes the run a warning
    assert result.status is Status.warning, result.output
    assert result.output.splitlines()[:3] == [
        "1 open findings (1 new), 0 fixed; 0 critical, 1 high",
        "new:",
        f"  high pip-audit CVE-2024-22195 jinja2==3.1.2 in {req}: Jinja vulnerable to HTML attribute "
        "injection when passing user input as keys to xmlattr filter (fixed in 3.1.3)",
    ]
    assert [c.detail["to"] for c in result.changes] == ["3.1.3"]


def test_a_missing_requirement_file_is_an_exact_unknown(tmp_path):
    missing = str(tmp_path / "nope.txt")
    result = scan(offline(missing))
    assert result.status is Status.unknown
    assert (
        result.output.splitlines()[1] == f"pip-audit: requirement file {missing}: No such file or directory"
    )


def test_a_malformed_vulnerability_file_is_an_exact_unknown(tmp_path):
    req = requirements(tmp_path, "jinja2==3.1.2")
    bad = tmp_path / "osv.json"
    bad.write_text('[{"id": "X", "affected": []}, {"summary": "no id"}]')
    params = {"scans": [{"scanner": "pip-audit", "requirements": [req], "vulnerability_file": str(bad)}]}
    result = scan(params)
    assert result.status is Status.unknown
    assert (
        result.output.splitlines()[1] == f"pip-audit: vulnerability file {bad}: record 1 has no string 'id'"
    )


# --- static scan ----------------------------------------------------------------------------


def test_bandit_reports_a_subprocess_call_with_shell_true(tmp_path):
    source = str(SUPPORT / "vulnerable.py")
    result = scan({"scans": [{"scanner": "bandit", "paths": [source], "min_severity": "medium"}]})
    assert result.status is Status.warning, result.output
    assert result.output.splitlines()[:3] == [
        "1 open findings (1 new), 0 fixed; 0 critical, 1 high",
        "new:",
        f"  high bandit B602 {source}:7: subprocess call with shell=True identified, security issue.",
    ]


def test_alike_issues_in_one_file_stay_apart_and_keep_their_identity_when_lines_move(tmp_path):
    source = tmp_path / "twice.py"
    call = "    subprocess.call(command, shell=True)\n"
    source.write_text("import subprocess\n\n\ndef run(command):\n" + call + call)
    memory = Memory()
    params = {"scans": [{"scanner": "bandit", "paths": [str(source)], "min_severity": "high"}]}
    first = scan(params, memory=memory)
    assert first.metrics["findings_new"] == 2
    moved = "import subprocess\n# a comment moves every line down\n\n\ndef run(command):\n"
    source.write_text(moved + call + call)
    second = scan(params, memory=memory)
    assert (second.metrics["findings_new"], second.metrics["findings_open"]) == (0, 2)
    assert f"{source}:7: subprocess call with shell=True" in second.output


def test_a_missing_path_is_an_exact_unknown_not_a_clean_bandit_scan(tmp_path):
    missing = tmp_path / "src"
    result = scan({"scans": [{"scanner": "bandit", "paths": [str(missing)]}]})
    assert result.status is Status.unknown
    assert result.output.splitlines()[1] == f"bandit: path {missing}: No such file or directory"


def test_malformed_json_from_a_scanner_is_an_exact_message(tmp_path):
    tool = fake_tool(tmp_path, "bandit", "open(args[args.index('-o') + 1], 'w').write('{\"results\": [')")
    result = scan({"scans": [{"scanner": "bandit", "paths": ["."], "command": [tool]}]})
    assert result.status is Status.unknown
    assert result.output.splitlines()[1] == (
        f"bandit: {tool} wrote malformed JSON: Expecting value: line 1 column 14 (char 13)"
    )


def test_json_not_shaped_as_bandit_names_the_place(tmp_path):
    body = "open(args[args.index('-o') + 1], 'w').write('{\"errors\": [], \"results\": [{\"test_id\": 1}]}')"
    tool = fake_tool(tmp_path, "bandit", body)
    result = scan({"scans": [{"scanner": "bandit", "paths": ["."], "command": [tool]}]})
    assert result.output.splitlines()[1] == (
        f"bandit: {tool} report is not bandit JSON: report.results[0]: no 'issue_severity'"
    )


def test_a_hung_scanner_is_killed_at_its_deadline(tmp_path):
    pid_file = tmp_path / "pid"
    body = f"open({str(pid_file)!r}, 'w').write(str(os.getpid()))\ntime.sleep(60)"
    tool = fake_tool(tmp_path, "bandit", body)
    started = time.monotonic()
    result = scan({"scans": [{"scanner": "bandit", "paths": ["."], "command": [tool], "timeout": "1s"}]})
    assert time.monotonic() - started < 10
    assert result.status is Status.unknown
    assert (
        result.output.splitlines()[1]
        == f"bandit: {tool} did not finish in 1.0s; its process group was killed"
    )
    pid = int(pid_file.read_text())
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_the_run_deadline_bounds_a_scanner_without_its_own_timeout(tmp_path):
    tool = fake_tool(tmp_path, "bandit", "time.sleep(60)")
    result = scan({"scans": [{"scanner": "bandit", "paths": ["."], "command": [tool]}]}, timeout=2.5)
    # one second is kept back, so the scan says what happened before the runner cancels the run
    assert (
        result.output.splitlines()[1]
        == f"bandit: {tool} did not finish in 1.5s; its process group was killed"
    )


# --- container image scan -------------------------------------------------------------------


def test_no_trivy_or_grype_is_unknown_scanner_not_installed_never_ok(tmp_path, monkeypatch):
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    result = scan({"scans": [{"scanner": "image", "images": ["registry.example/app:1.4"]}]})
    assert result.status is Status.unknown
    assert result.output.splitlines() == [
        "0 open findings (0 new), 0 fixed; 0 critical, 0 high",
        "image: scanner not installed: neither trivy nor grype is on PATH",
    ]


@pytest.mark.parametrize(
    ("tool", "body"),
    [
        ("trivy", f"shutil.copy({str(SUPPORT / 'trivy_report.json')!r}, args[args.index('--output') + 1])"),
        ("grype", f"shutil.copy({str(SUPPORT / 'grype_report.json')!r}, args[args.index('--file') + 1])"),
    ],
)
def test_trivy_and_grype_json_become_findings(tmp_path, tool, body):
    command = fake_tool(tmp_path, tool, body)
    result = scan(
        {"scans": [{"scanner": "image", "images": ["registry.example/app:1.4"], "command": [command]}]}
    )
    assert result.status is Status.critical, result.output
    assert result.output.splitlines()[2].startswith(
        "  critical image CVE-2024-6387 registry.example/app:1.4: openssh-client 1:9.2p1-2+deb12u2: "
    )
    assert result.output.splitlines()[2].endswith(" (fixed in 1:9.2p1-2+deb12u3)")
    assert f"image: scanned with {tool}" in result.output


# --- log analysis ---------------------------------------------------------------------------

SSH_RULE = {
    "name": "ssh-failed-login",
    "pattern": r"sshd\[\d+\]: Failed password for .* from (?P<source>\S+)",
    "threshold": 3,
    "group_by": "source",
}


def auth_lines(source: str, count: int) -> str:
    return "".join(
        f"Nov 27 01:0{i % 10}:00 host sshd[42{i}]: Failed password for root from {source} port 22 ssh2\n"
        for i in range(count)
    )


def test_a_log_rule_fires_over_its_threshold_per_group(tmp_path):
    log = tmp_path / "auth.log"
    log.write_text(auth_lines("203.0.113.9", 4) + auth_lines("198.51.100.7", 3) + "unrelated\n")
    result = scan({"scans": [{"scanner": "logs", "paths": [str(tmp_path / "*.log")], "rules": [SSH_RULE]}]})
    assert result.status is Status.warning
    assert result.output.splitlines()[:3] == [
        "1 open findings (1 new), 0 fixed; 0 critical, 1 high",
        "new:",
        f"  high logs ssh-failed-login {log} (source=203.0.113.9): 4 lines matched ssh-failed-login "
        "for source 203.0.113.9 since the last scan (threshold 3)",
    ]


def test_the_log_scanner_reads_only_what_was_written_since_the_last_scan(tmp_path):
    log = tmp_path / "auth.log"
    log.write_text(auth_lines("203.0.113.9", 4))
    memory, clock = Memory(), FakeClock(T0)
    params = {"scans": [{"scanner": "logs", "paths": [str(log)], "rules": [SSH_RULE]}]}
    assert scan(params, memory=memory, clock=clock).metrics["findings_new"] == 1
    assert memory.memo["state"]["logs"][str(log)] == {
        "inode": log.stat().st_ino,
        "offset": log.stat().st_size,
    }
    with log.open("a") as f:
        f.write(auth_lines("203.0.113.9", 2) + "half a line")  # two more: under the threshold
    clock.advance(DAY)
    second = scan(params, memory=memory, clock=clock)
    assert second.status is Status.ok, second.output
    assert second.metrics["findings_fixed"] == 1
    # the unfinished last line is left for the next scan
    assert memory.memo["state"]["logs"][str(log)]["offset"] == log.stat().st_size - len("half a line")


def test_a_rotated_log_is_read_from_its_start(tmp_path):
    log = tmp_path / "auth.log"
    log.write_text(auth_lines("203.0.113.9", 10))
    memory = Memory()
    params = {"scans": [{"scanner": "logs", "paths": [str(log)], "rules": [SSH_RULE]}]}
    scan(params, memory=memory)
    log.rename(tmp_path / "auth.log.1")
    log.write_text(auth_lines("203.0.113.9", 5))  # a new, shorter file: a new inode
    result = scan(params, memory=memory)
    assert "1 open findings (0 new)" in result.output
    assert "4 lines" not in result.output and "5 lines matched" in result.output
    assert f"logs: {log}: a new file since the last scan (rotated?): read from its start" in result.output


def test_a_missing_log_file_is_an_exact_unknown(tmp_path):
    missing = tmp_path / "auth.log"
    result = scan({"scans": [{"scanner": "logs", "paths": [str(missing)], "rules": [SSH_RULE]}]})
    assert result.status is Status.unknown
    assert result.output.splitlines()[1] == f"logs: log file {missing}: No such file or directory"


# --- across days: new, still open, fixed; the report ----------------------------------------


def test_findings_are_new_then_still_open_then_fixed_across_days_with_a_report_each_day(tmp_path):
    reports = tmp_path / "reports"
    memory, clock = Memory(), FakeClock(T0)
    req = requirements(tmp_path, "jinja2==3.1.2", "PyYAML==5.3")
    day1 = scan(offline(req, report_dir=str(reports)), memory=memory, clock=clock)
    assert day1.status is Status.critical

    requirements(tmp_path, "jinja2==3.1.2", "PyYAML==5.4", "requests==2.31.0")
    clock.advance(DAY)
    day2 = scan(offline(req, report_dir=str(reports)), memory=memory, clock=clock)
    # the critical is fixed; requests is new; jinja2 is still open since day 1
    assert day2.status is Status.ok, day2.output
    lines = day2.output.splitlines()
    assert lines[0] == "2 open findings (1 new), 1 fixed; 0 critical, 0 high"
    assert lines[1] == "new:" and "GHSA-9wx4-h78v-vm56 requests==2.31.0" in lines[2]
    assert lines[3] == "still open:" and "GHSA-h5c8-rqwp-cp95 jinja2==3.1.2" in lines[4]
    assert lines[5] == "fixed:" and "GHSA-8q59-q68h-6hv4 pyyaml==5.3" in lines[6]

    md = reports / "security-2026-11-28-nightly-t1.md"
    html = reports / "security-2026-11-28-nightly-t1.html"
    assert sorted(p.name for p in reports.iterdir()) == [
        "security-2026-11-27-nightly-t1.html",
        "security-2026-11-27-nightly-t1.md",
        html.name,
        md.name,
    ]
    text = md.read_text()
    assert "1 new, 1 still open, 1 fixed; 1 patch updates proposed." in text
    sections = [line for line in text.splitlines() if line.startswith("## ")]
    assert sections == [
        "## New (1)",
        "## Still open (1)",
        "## Not rescanned (their scan failed) (0)",
        "## Fixed (1)",
        "## Proposed patch updates (1)",
        "## Notes",
    ]
    still_open = text.split("## Still open (1)")[1].split("## Not rescanned")[0]
    assert f"| {T0.isoformat()} |" in still_open  # first seen on day 1
    assert "<h2>Fixed (1)</h2>" in html.read_text()
    assert [c.action for c in day2.changes] == ["propose-update", "write-report"]
    assert day2.changes[-1].target == str(md)


def test_a_scan_that_fails_keeps_its_findings_open_instead_of_calling_them_fixed(tmp_path):
    memory, clock = Memory(), FakeClock(T0)
    req = requirements(tmp_path, "PyYAML==5.3")
    scan(offline(req), memory=memory, clock=clock)
    Path(req).unlink()
    clock.advance(DAY)
    result = scan(offline(req), memory=memory, clock=clock)
    assert result.status is Status.critical  # the critical is still known, still open
    assert result.metrics["findings_fixed"] == 0
    assert "not rescanned:" in result.output
    requirements(tmp_path, "PyYAML==6.0.1")
    clock.advance(DAY)
    assert scan(offline(req), memory=memory, clock=clock).metrics["findings_fixed"] == 1


def test_report_text_from_scanners_is_escaped(tmp_path):
    log = tmp_path / "app.log"
    log.write_text("<script>alert(1)</script> | **boom**\n")
    rule = {"name": "xss", "pattern": "script", "title": "<script>alert(1)</script> | x"}
    scan(
        {
            "scans": [{"scanner": "logs", "paths": [str(log)], "rules": [rule]}],
            "report_dir": str(tmp_path / "r"),
        },
    )
    html = (tmp_path / "r" / "security-2026-11-27-nightly-t1.html").read_text()
    assert "<script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt; | x" in html
    md = (tmp_path / "r" / "security-2026-11-27-nightly-t1.md").read_text()
    assert "\\<script\\>alert(1)\\</script\\> \\| x" in md


def test_a_dry_run_writes_no_report_and_keeps_no_memo(tmp_path):
    reports = tmp_path / "reports"
    memory = Memory()
    req = requirements(tmp_path, "jinja2==3.1.2")
    result = scan(offline(req, report_dir=str(reports)), memory=memory, dry_run=True)
    assert not reports.exists()
    assert memory.memo == {}
    md = reports / "security-2026-11-27-nightly-t1.md"
    assert result.changes[-1].as_json() == {
        "action": "write-report",
        "target": str(md),
        "detail": {"html": str(md.with_suffix(".html"))},
    }
    assert result.output.endswith(f"dry run: would write the report {md} and {md.with_suffix('.html')}")


def test_an_unwritable_report_directory_is_an_exact_critical(tmp_path):
    blocker = tmp_path / "reports"
    blocker.write_text("a file, not a directory")
    req = requirements(tmp_path, "requests==2.32.3")
    result = scan(offline(req, report_dir=str(blocker)))
    assert result.status is Status.critical
    assert result.output.splitlines()[-1] == f"report not written: {blocker}: File exists"


# --- through the engine: the memo in the store, the alert path, the audit trail -------------

ENGINE_PLAN = """
    targets:
      - {name: app, kind: service}
    tasks:
      - name: dependency-scan
        kind: security-scan
        targets: [app]
        schedule: {every: 1d}
        alert: {after: 1}
        params:
          report_dir: %s
          scans:
            - {scanner: pip-audit, requirements: [%s], vulnerability_file: %s}
"""


def scan_alerts(engine: Engine) -> list[AlertRow]:
    """The alerts the scan's runs raised (a day later the engine adds its own: response overdue)."""
    with engine.store.read() as s:
        return [a for a in s.scalars(select(AlertRow)).all() if a.source == "run"]


def one_day(engine: Engine) -> RunRow:
    async def go() -> None:
        orders, _ = engine.tick(engine.clock.now())
        await engine.runner.run_all(orders)
        await engine.runner.stop(0)

    run(go())
    engine.clock.advance(DAY)
    with engine.store.read() as s:
        latest = s.scalars(select(RunRow).order_by(RunRow.started_at.desc())).first()
        assert latest is not None
        s.expunge(latest)
        return latest


def test_through_the_engine_a_new_critical_alerts_stays_one_alert_and_resolves_when_fixed(
    store, write_plan, make_engine, tmp_path
):
    req = requirements(tmp_path, "jinja2==3.1.2", "PyYAML==5.3")
    engine: Engine = make_engine(store, write_plan(ENGINE_PLAN % (tmp_path / "reports", req, OSV)))
    assert engine.reload().ok

    day1 = one_day(engine)
    assert (day1.status, day1.output.splitlines()[0]) == (
        "critical",
        "2 open findings (2 new), 0 fixed; 1 critical, 0 high",
    )
    (alert,) = scan_alerts(engine)
    with store.read() as s:
        (applied,) = s.scalars(select(EventRow).where(EventRow.kind == "action.applied")).all()
    assert alert.status == "firing" and alert.labels["task"] == "dependency-scan"
    assert [c["action"] for c in applied.payload["changes"]] == ["propose-update", "write-report"]
    assert applied.payload["changes"][0]["detail"]["to"] == "3.1.3"

    day2 = one_day(engine)  # the memo came back from the store: nothing is new
    assert day2.output.splitlines()[0] == "2 open findings (0 new), 0 fixed; 1 critical, 0 high"
    assert [a.id for a in scan_alerts(engine)] == [alert.id]  # still the one alert

    requirements(tmp_path, "jinja2==3.1.3", "PyYAML==6.0.1")
    day3 = one_day(engine)
    assert day3.status == "ok"
    assert day3.output.splitlines()[0] == "0 open findings (0 new), 2 fixed; 0 critical, 0 high"
    assert [(a.id, a.status) for a in scan_alerts(engine)] == [(alert.id, "resolved")]
    assert sorted(p.name for p in (tmp_path / "reports").iterdir() if p.suffix == ".md") == [
        "security-2026-11-27-dependency-scan-app.md",
        "security-2026-11-28-dependency-scan-app.md",
        "security-2026-11-29-dependency-scan-app.md",
    ]


# --- the offline matcher, table-driven -------------------------------------------------------


def osv_record(*events: dict[str, str], versions: tuple[str, ...] = ()) -> dict[str, Any]:
    package = {"ecosystem": "PyPI", "name": "Demo_Pkg"}
    affected: dict[str, Any] = {"package": package, "versions": list(versions)}
    if events:
        affected["ranges"] = [{"type": "ECOSYSTEM", "events": list(events)}]
    return {"id": "OSV-1", "affected": [affected]}


@pytest.mark.parametrize(
    ("record", "version", "fixed_in"),
    [
        (osv_record({"introduced": "0"}, {"fixed": "1.2.3"}), "1.2.2", "1.2.3"),
        (osv_record({"introduced": "0"}, {"fixed": "1.2.3"}), "1.2.3", None),  # not affected
        (osv_record({"introduced": "1.1"}, {"fixed": "1.2"}), "1.0.9", None),  # before introduced
        (osv_record({"introduced": "1.1"}, {"last_affected": "1.3"}), "1.3", "no fix"),
        (osv_record({"introduced": "1.1"}, {"last_affected": "1.3"}), "1.3.1", None),
        # two ranges in one list: 1.x fixed in 1.4.2, 2.x fixed in 2.0.1
        (
            osv_record({"introduced": "0"}, {"fixed": "1.4.2"}, {"introduced": "2.0"}, {"fixed": "2.0.1"}),
            "2.0",
            "2.0.1",
        ),
        (
            osv_record({"introduced": "0"}, {"fixed": "1.4.2"}, {"introduced": "2.0"}, {"fixed": "2.0.1"}),
            "1.5",
            None,
        ),
        (osv_record(versions=("0.9",)), "0.9", "no fix"),  # listed versions, no ranges
        (osv_record({"introduced": "0"}, {"fixed": "2.0rc1"}), "2.0b1", "2.0rc1"),  # pre-releases order
    ],
)
def test_osv_ranges_are_walked_in_version_order(record, version, fixed_in):
    matches = affecting([record], "demo-pkg", version)  # names compare canonicalised
    if fixed_in is None:
        assert matches == []
    else:
        (match,) = matches
        assert match.fixed_in == (None if fixed_in == "no fix" else fixed_in)


def test_requirement_files_are_read_as_pip_compile_writes_them(tmp_path):
    path = tmp_path / "requirements.txt"
    path.write_text(
        "-r base.txt\n"
        "Jinja2==3.1.2 \\\n"
        "    --hash=sha256:aa \\\n"
        "    --hash=sha256:bb\n"
        "    # via flask\n"
        "requests>=2.0  # not pinned\n"
        'legacy==1.0 ; python_version < "3"\n'
        "zope.interface===6.1\n"
    )
    pins, notes = read_pins(str(path))
    assert [(p.name, p.version, p.line) for p in pins] == [
        ("jinja2", "3.1.2", 2),
        ("zope-interface", "6.1", 8),
    ]
    assert notes == [
        f"{path}:1: option -r not followed offline",
        f"{path}:6: requests is not pinned with ==, not checked",
    ]
