"""Static scan: bandit over Python files and directories."""

from __future__ import annotations

import dataclasses
import os
from collections import Counter
from typing import Any

from maintd.checks.base import RunContext
from maintd.tasks.security.config import BanditScan, Severity
from maintd.tasks.security.findings import Finding, ScanError, ScanOutput
from maintd.tasks.security.tools import Shape, field, require, run_tool

_LEVEL = {"LOW": Severity.low, "MEDIUM": Severity.medium, "HIGH": Severity.high}


async def scan(cfg: BanditScan, ctx: RunContext, state: dict[str, Any]) -> ScanOutput:
    for path in cfg.paths:
        # bandit notes a missing path in its report and exits 0: that would pass as a clean scan.
        if not os.path.exists(path):
            raise ScanError(f"{cfg.label}: path {path}: No such file or directory")
    command = [require(cfg.command[0], cfg.label), *cfg.command[1:]]

    def argv(report: str) -> list[str]:
        args = [*command, "-f", "json", "-o", report, "-q", "-r", *cfg.paths]
        return args + (["-x", ",".join(cfg.exclude)] if cfg.exclude else [])

    timeout = cfg.timeout.total_seconds() if cfg.timeout is not None else None
    done = await run_tool(argv, label=cfg.label, ctx=ctx, timeout=timeout)
    out = ScanOutput([], [])
    try:
        for index, error in enumerate(field(done.report, "errors", list, "report")):
            where = f"report.errors[{index}]"
            out.notes.append(f"{field(error, 'filename', str, where)}: {field(error, 'reason', str, where)}")
        seen: Counter[tuple[str, str, str]] = Counter()
        for index, issue in enumerate(field(done.report, "results", list, "report")):
            finding = _finding(cfg, issue, f"report.results[{index}]")
            if finding is None:
                continue
            # Two alike issues on alike lines of one file (two queries that both open with
            # `"""`) stay two findings: the second is told apart by its order in the file.
            key = (finding.id, finding.location, finding.anchor)
            seen[key] += 1
            if seen[key] > 1:
                finding = dataclasses.replace(finding, anchor=f"{finding.anchor} #{seen[key]}")
            out.findings.append(finding)
    except Shape as exc:
        raise ScanError(f"{cfg.label}: {command[0]} report is not bandit JSON: {exc}") from None
    return out


def _finding(cfg: BanditScan, issue: Any, where: str) -> Finding | None:
    severity = _level(field(issue, "issue_severity", str, where), f"{where}.issue_severity")
    confidence = _level(field(issue, "issue_confidence", str, where), f"{where}.issue_confidence")
    if severity.rank < cfg.min_severity.rank or confidence.rank < cfg.min_confidence.rank:
        return None
    line = field(issue, "line_number", int, where)
    return Finding(
        scanner=cfg.label,
        id=field(issue, "test_id", str, where),
        location=field(issue, "filename", str, where),
        severity=severity,
        title=field(issue, "issue_text", str, where),
        line=line,
        anchor=_code_at(issue.get("code"), line),
    )


def _level(value: str, where: str) -> Severity:
    try:
        return _LEVEL[value.upper()]
    except KeyError:
        raise Shape(f"{where}: {value!r} is not LOW, MEDIUM or HIGH") from None


def _code_at(code: Any, line: int) -> str:
    """The flagged line's text, whitespace folded: the same issue after lines above it moved."""
    if not isinstance(code, str):
        return ""
    prefix = f"{line} "
    for text in code.splitlines():
        if text.startswith(prefix):
            return " ".join(text[len(prefix) :].split())
    return ""
