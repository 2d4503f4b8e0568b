"""What the probes found, gathered into one CheckResult: facts for the summary line, problems below."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from maintd.checks.base import CheckResult, Status, format_bytes


@dataclass
class Report:
    where: str
    facts: list[str] = field(default_factory=list)
    """Short measurements with their thresholds, joined into the first output line."""
    problems: list[tuple[Status, str]] = field(default_factory=list)
    details: list[str] = field(default_factory=list)
    """Informational lines after the problems (each standby, each slot)."""
    metrics: dict[str, float] = field(default_factory=dict)
    headline: str = "PostgreSQL"

    def problem(self, status: Status, text: str) -> None:
        if status is not Status.ok:
            self.problems.append((status, text))

    @property
    def status(self) -> Status:
        return max((s for s, _ in self.problems), key=lambda s: s.rank, default=Status.ok)

    def result(self) -> CheckResult:
        first = f"{self.headline} at {self.where}"
        if self.facts:
            first += ": " + ", ".join(self.facts)
        problems = sorted(self.problems, key=lambda p: -p[0].rank)
        lines = [first, *(f"{s.value.upper()}: {text}" for s, text in problems), *self.details]
        return CheckResult(self.status, "\n".join(lines), self.metrics)


def level(value: float | None, warn: float | None, crit: float | None) -> Status:
    """ok, warning or critical for ``value`` against optional thresholds (reached = over)."""
    if value is None:
        return Status.ok
    if crit is not None and value >= crit:
        return Status.critical
    if warn is not None and value >= warn:
        return Status.warning
    return Status.ok


def seconds(value: timedelta | None) -> float | None:
    return None if value is None else value.total_seconds()


def limits(warn: str | None, crit: str | None) -> str:
    """``warn 80%, crit 90%`` for the thresholds that are set, or ``no threshold``."""
    parts = [f"{name} {value}" for name, value in (("warn", warn), ("crit", crit)) if value is not None]
    return ", ".join(parts) if parts else "no threshold"


def fmt_bytes(value: float | None) -> str | None:
    return None if value is None else format_bytes(float(value))


def fmt_seconds(value: float | None) -> str | None:
    """``850ms``, ``42s``, ``12m05s``, ``10m``, ``3h02m``, ``2d04h``."""
    if value is None:
        return None
    if value < 1:
        return f"{value * 1000:.0f}ms"
    if value < 60:
        return f"{value:.1f}s" if value < 10 else f"{value:.0f}s"
    whole = int(value)
    for big, small, big_unit, small_unit in (
        (86400, 3600, "d", "h"),
        (3600, 60, "h", "m"),
        (60, 1, "m", "s"),
    ):
        if whole >= big:
            rest = whole % big // small
            return f"{whole // big}{big_unit}" + (f"{rest:02d}{small_unit}" if rest else "")
    raise AssertionError("unreachable")


def fmt_percent(value: float | None) -> str | None:
    return None if value is None else f"{value:g}%"


def fmt_ratio(value: float | None) -> str | None:
    return None if value is None else f"{100 * value:.0f}%"
