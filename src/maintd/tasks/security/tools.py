"""Run an external scanner (argument list, own process group, bounded time) and read its JSON report.

Each tool writes its JSON report to a file of ours (``-o``): their progress and warnings go to
stdout/stderr, and a report mixed into those would not parse.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from maintd.checks.base import RunContext
from maintd.checks.command.process import execute
from maintd.tasks.security.findings import ScanError

OUTPUT_LIMIT = 65_536
# Kept back from the run's deadline so a hung scanner is killed (and said so) by the scan,
# before the runner cancels the whole run.
DEADLINE_MARGIN = 1.0


@dataclass(frozen=True)
class ToolRun:
    code: int
    report: Any  # the parsed JSON report
    output: str  # what it printed (stdout and stderr)


def time_limit(ctx: RunContext, timeout_seconds: float | None) -> float:
    left = max(0.1, ctx.seconds_left() - DEADLINE_MARGIN)
    return left if timeout_seconds is None else min(left, timeout_seconds)


def require(program: str, label: str) -> str:
    """The program's path, or ScanError 'not installed' (the run is unknown, never ok).

    Besides PATH, the directory of maintd's own interpreter: the ``security`` extra installs
    pip-audit and bandit into maintd's virtualenv, which a service's PATH often lacks.
    """
    found = shutil.which(program) or shutil.which(program, path=os.path.dirname(sys.executable))
    if found is None:
        raise ScanError(f"{label}: scanner not installed: {program} is not on PATH")
    return found


async def run_tool(
    argv_for: Callable[[str], list[str]],
    *,
    label: str,
    ctx: RunContext,
    timeout: float | None,
) -> ToolRun:
    """Run ``argv_for(report_path)``; ScanError when it cannot start, is killed or reports nothing readable.

    The exit code alone decides nothing: pip-audit and bandit exit 1 when they find something,
    and a tool that failed writes no report.
    """
    limit = time_limit(ctx, timeout)
    with tempfile.TemporaryDirectory(prefix="maintd-scan-") as scratch:
        report_path = os.path.join(scratch, "report.json")
        argv = argv_for(report_path)
        try:
            done = await execute(argv, limit=OUTPUT_LIMIT, tracker=ctx.processes, time_limit=limit)
        except OSError as exc:
            raise ScanError(f"{label}: cannot start {argv[0]}: {exc.strerror or exc}") from None
        output = done.output.decode(errors="replace")
        if done.code is None:
            raise ScanError(
                f"{label}: {argv[0]} did not finish in {limit:.1f}s; its process group was killed"
            )
        text = _read(report_path)
        if not text.strip():
            last = _last_line(output)
            raise ScanError(
                f"{label}: {argv[0]} exited {done.code} without a report" + (f": {last}" if last else "")
            )
        try:
            report = json.loads(text)
        except ValueError as exc:
            raise ScanError(f"{label}: {argv[0]} wrote malformed JSON: {exc}") from None
        return ToolRun(done.code, report, output)


def _read(path: str) -> str:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read()
    except FileNotFoundError:
        return ""


def _last_line(output: str) -> str:
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    return lines[-1] if lines else ""


class Shape(ValueError):
    """The JSON parsed but is not shaped as the tool documents: what was expected, where."""


def field(data: Any, key: str, kind: type | tuple[type, ...], where: str) -> Any:
    """``data[key]`` checked to be ``kind``, else Shape naming the place."""
    if not isinstance(data, dict):
        raise Shape(f"{where}: expected an object, got {type(data).__name__}")
    if key not in data:
        raise Shape(f"{where}: no {key!r}")
    value = data[key]
    if not isinstance(value, kind):
        names = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
        raise Shape(f"{where}.{key}: expected {names}, got {type(value).__name__}")
    return value
