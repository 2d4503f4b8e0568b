"""One series as an SVG chart, written by hand: history, projection, its interval and the limit.

No plotting library (matplotlib would be one more heavy dependency to pin and import lazily) for
four lines and a band that a few polylines draw.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from html import escape

from maintd.capacity.format import amount
from maintd.capacity.model import Forecast

WIDTH, HEIGHT = 640, 220
LEFT, RIGHT, TOP, BOTTOM = 70, 10, 20, 30  # margins for the axis labels


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

    title = escape(f.series.label())
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{title}">',
        f"<title>{title}</title>",
        f'<rect x="{LEFT}" y="{TOP}" width="{WIDTH - LEFT - RIGHT}" height="{HEIGHT - TOP - BOTTOM}" '
        'fill="none" stroke="#ccc"/>',
    ]
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


def _points(points: Sequence[tuple[float, float]]) -> str:
    return " ".join(f"{px:.1f},{py:.1f}" for px, py in points)


def _line(name: str, points: Sequence[tuple[float, float]], colour: str, dashed: bool = False) -> str:
    dash = ' stroke-dasharray="6 4"' if dashed else ""
    return (f'<polyline class="{name}" points="{_points(points)}" fill="none" stroke="{colour}" '
            f'stroke-width="1.5"{dash}/>')  # fmt: skip


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
