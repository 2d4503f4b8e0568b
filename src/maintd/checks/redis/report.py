"""What one run found, line by line, and how numbers and thresholds are written in it."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from maintd.checks.base import CheckResult, Status


@dataclass
class Findings:
    """What one run found: each line has a status; the worst decides, the problems lead the summary."""

    lines: list[tuple[Status, str]] = field(default_factory=list)
    metrics: dict[str, float] = field(default_factory=dict)

    def add(self, status: Status, text: str) -> None:
        self.lines.append((status, text))

    @property
    def status(self) -> Status:
        return max((s for s, _ in self.lines), key=lambda s: s.rank, default=Status.ok)

    def result(self, where: str, headline: list[str]) -> CheckResult:
        status = self.status
        worst_first = sorted(self.lines, key=lambda line: -line[0].rank)
        problems = [t for s, t in worst_first if s is not Status.ok]
        summary = f"{where}: " + "; ".join(problems or headline)
        details = [f"{s.value.upper()}: {t}" if s is not Status.ok else t for s, t in self.lines]
        return CheckResult(status, "\n".join([summary, *details]), self.metrics)


def clients_text(clients: int) -> str:
    return f"{clients} client{'' if clients == 1 else 's'}"


def upper(value: float, warn: float | None, crit: float | None) -> Status:
    if crit is not None and value >= crit:
        return Status.critical
    if warn is not None and value >= warn:
        return Status.warning
    return Status.ok


def limits(warn: float | None, crit: float | None, fmt: Any) -> str:
    parts = [
        f"warning at {fmt(warn)}" if warn is not None else "",
        f"critical at {fmt(crit)}" if crit is not None else "",
    ]
    shown = [p for p in parts if p]
    return f" ({', '.join(shown)})" if shown else ""


def in_seconds(value: timedelta | None) -> float | None:
    return value.total_seconds() if value is not None else None


def fmt_ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


def ago(interval: timedelta) -> str:
    seconds = max(0, int(interval.total_seconds()))
    if seconds < 120:
        return f"{seconds}s ago"
    if seconds < 7200:
        return f"{seconds // 60}m ago"
    return f"{seconds / 3600:.1f}h ago"
