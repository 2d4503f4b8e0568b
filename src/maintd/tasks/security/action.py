"""Run the task's scans, reconcile their findings with the last run's, report, propose patch updates."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from maintd.checks.base import MEMO_LIMIT, Change, CheckResult, RunContext, Status
from maintd.tasks.security import bandit, image, logs, pip_audit, report
from maintd.tasks.security.config import SecurityScanConfig, Severity
from maintd.tasks.security.findings import Finding, ScanError, Scanner
from maintd.tasks.security.ledger import Ledger, Tracked, reconcile
from maintd.tasks.security.proposals import Proposal, propose

SCANNERS: dict[str, Scanner] = {
    "pip-audit": pip_audit.scan,
    "bandit": bandit.scan,
    "image": image.scan,
    "logs": logs.scan,
}


@dataclass
class Outcome:
    findings: list[Finding] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    problems: list[tuple[str, ScanError]] = field(default_factory=list)
    states: dict[str, Any] = field(default_factory=dict)
    scanned: set[str] = field(default_factory=set)


async def run(cfg: SecurityScanConfig, ctx: RunContext) -> CheckResult:
    memo = await ctx.memo()
    kept = memo.get("state")
    previous_states: dict[str, Any] = kept if isinstance(kept, dict) else {}
    outcome = Outcome()
    for scan in cfg.scans:
        before = previous_states.get(scan.label)
        try:
            out = await SCANNERS[scan.scanner](scan, ctx, before if isinstance(before, dict) else {})
        except ScanError as exc:
            outcome.problems.append((scan.label, exc))
            if before is not None:
                outcome.states[scan.label] = before
            continue
        outcome.scanned.add(scan.label)
        outcome.findings += out.findings
        outcome.notes += [f"{scan.label}: {note}" for note in out.notes]
        if out.state is not None:
            outcome.states[scan.label] = out.state
    failed = {label for label, _ in outcome.problems}
    now = ctx.clock.now()
    ledger = reconcile(memo.get("findings"), outcome.findings, outcome.scanned, failed, now)
    proposals = propose([t.finding for t in ledger.current])
    result = _result(cfg, ledger, proposals, outcome)
    result.memo = {"findings": ledger.memo(), "state": outcome.states}
    size = len(json.dumps(result.memo))
    if size > MEMO_LIMIT:
        result.output += (
            f"\nthe findings ({size} bytes) are over the memo limit ({MEMO_LIMIT}): not kept, so the next "
            "run reports them as new again; narrow the scans (min_severity, exclude, fewer paths)"
        )
    if cfg.report_dir is not None:
        _write_report(cfg, ctx, ledger, proposals, outcome, result)
    return result


def _result(
    cfg: SecurityScanConfig, ledger: Ledger, proposals: list[Proposal], outcome: Outcome
) -> CheckResult:
    current = ledger.current
    critical = sum(t.finding.severity is Severity.critical for t in current)
    high = sum(t.finding.severity is Severity.high for t in current)
    # An open critical keeps the run critical until it is fixed: its alert stays up (deduplicated
    # by the alert path, not paged again) and resolves with the fix.
    status = Status.critical if critical else Status.warning if high else Status.ok
    for _, problem in outcome.problems:
        status = max(status, problem.status, key=lambda s: s.rank)
    head = (
        f"{len(current)} open findings ({len(ledger.new)} new), {len(ledger.fixed)} fixed; "
        f"{critical} critical, {high} high"
    )
    lines = [head, *[problem.message for _, problem in outcome.problems]]
    for name, group in (
        ("new", ledger.new),
        ("still open", ledger.open),
        ("not rescanned", ledger.unscanned),
        ("fixed", ledger.fixed),
    ):
        if group:
            lines.append(f"{name}:")
            lines += [f"  {_line(t)}" for t in group[: cfg.list_limit]]
            if len(group) > cfg.list_limit:
                lines.append(f"  ... and {len(group) - cfg.list_limit} more")
    if proposals:
        lines.append("proposed patch updates (not applied):")
        lines += [f"  {p.line}" for p in proposals]
    lines += outcome.notes
    metrics = {
        "findings_open": float(len(current)),
        "findings_new": float(len(ledger.new)),
        "findings_fixed": float(len(ledger.fixed)),
        "critical": float(critical),
        "high": float(high),
        "proposals": float(len(proposals)),
        "scans_failed": float(len(outcome.problems)),
    }
    return CheckResult(status, "\n".join(lines), metrics, [p.change() for p in proposals])


def _line(tracked: Tracked) -> str:
    f = tracked.finding
    fixed = f" (fixed in {f.fixed_in})" if f.fixed_in else ""
    return f"{f.severity} {f.scanner} {f.id} {f.where}: {f.title}{fixed}"


def _write_report(
    cfg: SecurityScanConfig,
    ctx: RunContext,
    ledger: Ledger,
    proposals: list[Proposal],
    outcome: Outcome,
    result: CheckResult,
) -> None:
    assert cfg.report_dir is not None
    now = ctx.clock.now()
    md_path, html_path = report.paths(cfg.report_dir, ctx.task.name, ctx.target.name, now)
    if ctx.dry_run:
        result.changes.append(Change("write-report", md_path, {"html": html_path}))
        result.output += f"\ndry run: would write the report {md_path} and {html_path}"
        return
    problems = [problem.message for _, problem in outcome.problems]
    title = f"Security report {now.date().isoformat()}: {ctx.task.name} on {ctx.target.name}"
    try:
        report.write(
            report.Report(title, now, ledger, proposals, problems, outcome.notes), md_path, html_path
        )
    except OSError as exc:
        result.status = Status.critical
        where = exc.filename or cfg.report_dir
        result.output += f"\nreport not written: {where}: {exc.strerror or exc}"
        return
    result.changes.append(Change("write-report", md_path, {"html": html_path}))
    result.output += f"\nreport: {md_path} ({html_path})"
