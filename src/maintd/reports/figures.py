"""KPI figures side by side: this period, the one before, the trend arrow, the target."""

from __future__ import annotations

from maintd.kpi.model import Figure, Report


def number(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    if unit == "%":
        return f"{value:.1f} %"
    if unit == "s":
        return f"{value:.0f} s" if value < 120 else f"{value / 60:.1f} min"
    if unit == "per day":
        return f"{value:.2f}/day"
    return f"{value:g}"


def arrow(now: Figure, before: Figure | None) -> str:
    """↑ / ↓ / → and, when the KPI has a better side, whether that is better or worse."""
    if before is None or now.value is None or before.value is None:
        return "-"
    if abs(now.value - before.value) < 1e-9:
        return "→"
    up = now.value > before.value
    mark = "↑" if up else "↓"
    if now.better is None:
        return mark
    good = up == (now.better == "higher")
    return f"{mark} {'better' if good else 'worse'}"


def target(f: Figure) -> str:
    if f.target is None or f.better is None:
        return "-"
    return ("≥ " if f.better == "higher" else "≤ ") + number(f.target, f.unit)


def met(f: Figure) -> str:
    return {True: "met", False: "NOT met", None: "-"}[f.met]


def side_by_side(now: Report, before: Report) -> list[list[str]]:
    """One row per figure of ``now``: group, KPI, value, previous value, trend, target, met, how."""
    previous = {f.name: f for f in before.figures}
    rows = []
    for f in now.figures:
        p = previous.get(f.name)
        was = number(p.value if p is not None else None, f.unit)
        rows.append([f.group, f.title, number(f.value, f.unit), was, arrow(f, p), target(f), met(f), f.how])
    return rows


def moved(now: Figure, before: Figure | None, points: float, relative: float) -> str | None:
    """Why ``now`` moved too far from ``before``: by ``points`` percentage points for a %, by
    ``relative`` (a fraction) of the earlier value otherwise; None when it did not."""
    if before is None or now.value is None or before.value is None:
        return None
    delta = now.value - before.value
    if now.unit == "%":
        if abs(delta) >= points:
            return f"{number(before.value, '%')} → {number(now.value, '%')} ({delta:+.1f} points)"
        return None
    if before.value and abs(delta) / abs(before.value) >= relative:
        change = 100 * delta / abs(before.value)
        return f"{number(before.value, now.unit)} → {number(now.value, now.unit)} ({change:+.0f} %)"
    return None
