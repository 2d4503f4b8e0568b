"""The check's result from its report: the summary line, the details, and a metric per step."""

from __future__ import annotations

from maintd.checks.base import CheckResult, Status
from maintd.checks.mcp.conversation import Plan, Report

_METRIC = {"server/discover": "discover", "tools/list": "tools_list", "tools/call": "call"}


def result_of(report: Report, plan: Plan) -> CheckResult:
    metrics: dict[str, float] = {"time": round(report.total, 6)}
    for step, seconds in report.steps:
        key = _METRIC.get(step, step)
        metrics[f"{key}_time"] = round(metrics.get(f"{key}_time", 0.0) + seconds, 6)
    if report.era is not None:
        metrics["modern"] = 1.0 if report.era == "modern" else 0.0
    if report.listed:
        metrics["tools"] = float(len(report.tools))
        metrics["tools_pages"] = float(report.pages)

    where = f"{report.transport} {report.where}"
    if report.failure is not None:
        status, summary = Status.critical, f"{report.failure} ({where})"
    else:
        name = report.server or "unnamed server"
        summary = (
            f"{name}: protocol {report.version} ({report.era}), {_count(len(report.tools), 'tool')}, "
            f"{report.total:.2f} s"
        )
        status = Status.ok
        if report.call_failed:
            status = Status.critical
            summary = f"{report.call}; {summary}"
        else:
            slow = _latency_status(report.total, plan.warn_latency, plan.crit_latency)
            if slow is not Status.ok:
                limit = plan.crit_latency if slow is Status.critical else plan.warn_latency
                summary += f", slower than {limit:g} s"
                status = slow
    lines = [summary, f"transport: {where}" + (f" (pid {report.pid})" if report.pid else "")]
    if report.version is not None:
        era = (
            "modern era: server/discover, no initialize, no ping"
            if report.era == "modern"
            else "handshake era: initialize, ping"
        )
        lines.append(f"protocol: {report.version} ({era})")
    if report.server is not None:
        lines.append(f"server: {report.server}")
    if report.listed:
        shown = ", ".join(sorted(report.tools))
        if len(shown) > 2000:
            shown = shown[:2000] + "…"
        pages = f" in {report.pages} pages" if report.pages > 1 else ""
        lines.append(f"tools ({len(report.tools)}{pages}): {shown or '-'}")
    if report.call is not None:
        lines.append(report.call)
    lines.append("latency: " + _latencies(report))
    lines.extend(f"note: {note}" for note in report.notes)
    if report.stderr:
        lines.append(f"server stderr (last {plan.stderr_limit} bytes at most):")
        lines.append(report.stderr)
    return CheckResult(status, "\n".join(lines), metrics)


def _latencies(report: Report) -> str:
    parts = [f"{step} {seconds * 1000:.0f} ms" for step, seconds in report.steps]
    parts.append(f"total {report.total:.2f} s")
    return ", ".join(parts)


def _latency_status(elapsed: float, warn: float | None, crit: float | None) -> Status:
    if crit is not None and elapsed >= crit:
        return Status.critical
    if warn is not None and elapsed >= warn:
        return Status.warning
    return Status.ok


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")
