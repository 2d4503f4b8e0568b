"""One series as an SVG chart, written by hand: history, projection, its interval and the limit.

The frame and lines are maintd.charts' (shared with maintd.reports).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from html import escape

from maintd.capacity.format import amount
from maintd.capacity.model import Forecast
from maintd.charts import BOTTOM, HEIGHT, LEFT, RIGHT, TOP, WIDTH, frame
from maintd.charts import line as _line
from maintd.charts import points as _points


def svg(f: Forecast) -> str:
    """The chart as a standalone ``<svg>`` element (embeddable in HTML, or a file of its own)."""
    times = [t for t, _ in f.history] + [p[0] for p in f.path]
    values = [v for _, v in f.history] + [y for p in f.path for y in p[1:]]
    if f.exhaustion is not None:
        values.append(f.exhaustion.limit)
    low, high = min(values), max(values)
    if high - low < 1e-12:
        low, high = low - 1, high + 1
    start, end = times[0].timestamp(), times[-1].timestamp()
    span = max(end - start, 1.0)

    def x(t: datetime) -> float:
        return LEFT + (WIDTH - LEFT - RIGHT) * (t.timestamp() - start) / span

    def y(v: float) -> float:
        return TOP + (HEIGHT - TOP - BOTTOM) * (high - v) / (high - low)

    parts = frame(f.series.label())
    if f.path:
        band = [(x(t), y(up)) for t, _, _, up in f.path] + [(x(t), y(lo)) for t, _, lo, _ in reversed(f.path)]
        parts.append(f'<polygon class="interval" points="{_points(band)}" fill="#f5c28a" opacity="0.5"/>')
        parts.append(_line("projection", [(x(t), y(v)) for t, v, _, _ in f.path], "#d9731a", dashed=True))
    parts.append(_line("history", [(x(t), y(v)) for t, v in f.history], "#1f5fa8"))
    if f.exhaustion is not None:
        limit = y(f.exhaustion.limit)
        parts.append(f'<line class="limit" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{limit:.1f}" '
                     f'y2="{limit:.1f}" stroke="#c0392b" stroke-dasharray="2 3"/>')  # fmt: skip
    parts += _labels(f, low, high, times, y)
    parts.append("</svg>")
    return "\n".join(parts)


def _labels(
    f: Forecast, low: float, high: float, times: list[datetime], y: Callable[[float], float]
) -> list[str]:
    style = 'font-family="sans-serif" font-size="11" fill="#444"'
    bottom = HEIGHT - BOTTOM + 15
    top, foot = escape(amount(high, f.unit)), escape(amount(low, f.unit))
    labels = [
        f'<text x="{LEFT - 4}" y="{y(high) + 4:.1f}" text-anchor="end" {style}>{top}</text>',
        f'<text x="{LEFT - 4}" y="{y(low):.1f}" text-anchor="end" {style}>{foot}</text>',
        f'<text x="{LEFT}" y="{bottom}" {style}>{times[0]:%Y-%m-%d}</text>',
        f'<text x="{WIDTH - RIGHT}" y="{bottom}" text-anchor="end" {style}>{times[-1]:%Y-%m-%d}</text>',
    ]
    if f.exhaustion is not None:
        text = escape(f"limit {amount(f.exhaustion.limit, f.unit)}")
        labels.append(f'<text x="{WIDTH - RIGHT - 4}" y="{y(f.exhaustion.limit) - 4:.1f}" '
                      f'text-anchor="end" {style}>{text}</text>')  # fmt: skip
    return labels
