"""The scanner-updates kind: real pin files, a local simple index and a JSON index, a change
drafted in the real store, and the bump procedure run (and rolled back) as the executor runs it."""

from __future__ import annotations

import json
import sys
from datetime import timedelta
from pathlib import Path

from sqlalchemy import select

from maintd.changes.commands import render
from maintd.changes.commands import run as run_command
from maintd.checks.base import CheckResult, Status
from maintd.plan.loader import load_plan
from maintd.store.db import Store
from maintd.store.models import ChangeRow
from tests.conftest import run
from tests.kinds import REGISTRY, run_kind

PYPROJECT = """[project]
name = "demo"
dependencies = ["aiohttp==3.13.2"]

[project.optional-dependencies]
dev = [
    "pytest==9.0.1",
    "pip-audit==2.10.1",
    "bandit==1.9.4",
]
security = [
    "pip-audit==2.10.1",
    "bandit==1.9.4",   # the scanner
]
"""
PY = sys.executable
PLAN = f"""
targets:
  - {{name: ci, kind: host}}
tasks:
  - name: ci-health
    kind: command
    targets: [ci]
    schedule: {{every: 1h}}
    params: {{argv: ["true"]}}
changes:
  watch: {{window: 5m, interval: 1m, checks: [ci-health]}}
  procedures:
    - name: bump-scanners
      apply: ["{PY}", -m, maintd.tasks.scanner_updates.bump, "{{file}}", "{{bumps}}"]
      rollback: ["{PY}", -m, maintd.tasks.scanner_updates.bump, --reverse, "{{file}}", "{{bumps}}"]
"""


def simple_index(root: Path) -> Path:
    pages = {
        "bandit": [
            '<a href="bandit-1.9.4-py3-none-any.whl">bandit-1.9.4-py3-none-any.whl</a>',
            '<a href="bandit-1.9.5.tar.gz">bandit-1.9.5.tar.gz</a>',
            '<a href="bandit-1.9.5-py3-none-any.whl">bandit-1.9.5-py3-none-any.whl</a>',
            '<a href="bandit-1.9.6-py3-none-any.whl" data-yanked="broken">bandit-1.9.6-py3-none-any.whl</a>',
            '<a href="bandit-2.0.0rc1-py3-none-any.whl">bandit-2.0.0rc1-py3-none-any.whl</a>',
        ],
        "pip-audit": ['<a href="pip_audit-2.10.1-py3-none-any.whl">pip_audit-2.10.1-py3-none-any.whl</a>'],
    }
    for name, links in pages.items():
        (root / name).mkdir(parents=True)
        body = "\n".join(f"    {link}<br/>" for link in links)
        (root / name / "index.html").write_text(f"<!DOCTYPE html>\n<html><body>\n{body}\n</body></html>\n")
    return root


def test_pins_behind_a_local_simple_index_are_reported_without_yanked_or_pre_releases(tmp_path):
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text(PYPROJECT)
    params = {"files": [str(pyproject)], "index": str(simple_index(tmp_path / "simple"))}
    result = run(run_kind("scanner-updates", params))
    assert result.status is Status.warning, result.output
    lines = result.output.splitlines()
    assert lines[0] == "2 scanner pins, 1 behind the index"
    assert f"{pyproject}: bandit 1.9.4 -> 1.9.5" in lines  # 1.9.6 is yanked, 2.0.0rc1 a pre-release
    assert f"{pyproject}: pip-audit 2.10.1 is the newest" in lines
    assert pyproject.read_text() == PYPROJECT and not result.changes
    table = tmp_path / "index.json"
    table.write_text(json.dumps({"pip_audit": ["2.10.1", "2.11.0"], "bandit": ["1.9.4"]}))
    result = run(run_kind("scanner-updates", {"files": [str(pyproject)], "index": str(table)}))
    assert f"{pyproject}: pip-audit 2.10.1 -> 2.11.0" in result.output.splitlines()
    missing = run(run_kind("scanner-updates", {"files": [str(tmp_path / "nope.txt")], "index": str(table)}))
    assert (
        missing.status is Status.critical
        and f"cannot read {tmp_path / 'nope.txt'}: no such file" in missing.output
    )


def test_a_bump_is_drafted_once_and_its_procedure_edits_exactly_those_pins_and_rolls_back(
    tmp_path, sqlite_store: Store
):
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text(PYPROJECT)
    (tmp_path / "plan.yaml").write_text(PLAN)
    params = {
        "files": [str(pyproject)],
        "index": str(simple_index(tmp_path / "simple")),
        "change": {"procedure": "bump-scanners", "type": "critical-security-patch",
                   "plan": str(tmp_path / "plan.yaml"), "database": sqlite_store.url},
    }  # fmt: skip
    dry = run(run_kind("scanner-updates", params, dry_run=True))
    assert [c.action for c in dry.changes] == ["draft-change"]
    with sqlite_store.read() as s:
        assert s.scalars(select(ChangeRow)).first() is None
    first = run(run_kind("scanner-updates", params))
    again = run(run_kind("scanner-updates", params))
    assert [c.action for c in first.changes] == ["draft-change"] and not again.changes
    with sqlite_store.read() as s:
        change = s.scalars(select(ChangeRow)).one()
    assert change.state == "draft" and change.requested_by == "scanner-updates"
    assert change.title == f"bump security scanners in {pyproject}: bandit 1.9.4 -> 1.9.5"
    assert change.params == {"file": str(pyproject), "bumps": "bandit==1.9.4->1.9.5"}
    procedure = load_plan(tmp_path / "plan.yaml", REGISTRY).plan.changes.procedure("bump-scanners")

    async def go() -> list[tuple[int | None, str]]:
        out = []
        for command in (procedure.apply, procedure.apply, procedure.rollback):
            done = await run_command(
                render(command, change.params), timeout=timedelta(seconds=30), limit=65536
            )
            out.append((done.code, pyproject.read_text()))
        return out

    (applied, after), (twice, after_twice), (undone, after_undo) = run(go())
    assert applied == 0 and after == PYPROJECT.replace("bandit==1.9.4", "bandit==1.9.5")
    assert twice == 0 and after_twice == after  # a second run changes nothing
    assert undone == 0 and after_undo == PYPROJECT


def test_the_bump_refuses_a_pin_that_is_not_there_and_changes_nothing(tmp_path):
    from maintd.tasks.scanner_updates.bump import main

    requirements = tmp_path / "requirements.txt"
    requirements.write_text("bandit==1.9.3\npip-audit==2.10.1\n")
    assert main([str(requirements), "pip-audit==2.10.1->2.10.2,bandit==1.9.4->1.9.5"]) == 1
    assert requirements.read_text() == "bandit==1.9.3\npip-audit==2.10.1\n"
    assert main([str(requirements), "bandit==1.9.4->1.9.5; rm -rf /"]) == 2
    result: CheckResult = run(
        run_kind("scanner-updates", {"files": [str(requirements)], "index": str(tmp_path)})
    )
    assert "bandit 1.9.3: not on the index" in result.output
