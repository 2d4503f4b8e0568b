"""Numbers as a reader wants them: bytes in binary units, percentages, counts, days."""

from __future__ import annotations

from maintd.capacity.model import Unit
from maintd.checks.base import format_bytes


def amount(value: float, unit: Unit) -> str:
    if unit == "bytes":
        return format_bytes(value)
    if unit == "%":
        return f"{value:.1f} %"
    return f"{value:,.1f}" if abs(value) < 100 else f"{value:,.0f}"


def growth(value: float | None, unit: Unit) -> str:
    if value is None:
        return "-"
    sign = "+" if value >= 0 else "-"
    return sign + amount(abs(value), unit)


def days(value: float | None) -> str:
    if value is None:
        return "-"
    return "now" if value <= 0 else f"{value:.0f} d"
