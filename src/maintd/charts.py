"""SVG charts written by hand, shared by the reports (maintd.capacity, maintd.reports).

No plotting library (matplotlib would be one more heavy dependency to pin and import lazily) for
lines and bars that a few SVG elements draw. Every text that reaches the SVG is escaped here, so a
chart is safe to inline in HTML whatever its labels say.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

WIDTH, HEIGHT = 640, 220
LEFT, RIGHT, TOP, BOTTOM = 70, 10, 20, 30  # margins for the axis labels
PALETTE = ("#1f5fa8", "#d9731a", "#2e8b57", "#c0392b", "#7d3c98", "#7f8c8d")
STYLE = 'font-family="sans-serif" font-size="11" fill="#444"'


@dataclass(frozen=True)
class Series:
    """One named row of values, one per category of the chart (None: no value there)."""

    name: str
    values: Sequence[float | None]


def points(pts: Sequence[tuple[float, float]]) -> str:
    return " ".join(f"{px:.1f},{py:.1f}" for px, py in pts)


def line(name: str, pts: Sequence[tuple[float, float]], colour: str, dashed: bool = False) -> str:
    dash = ' stroke-dasharray="6 4"' if dashed else ""
    return (f'<polyline class="{escape(name)}" points="{points(pts)}" fill="none" stroke="{colour}" '
            f'stroke-width="1.5"{dash}/>')  # fmt: skip


def frame(title: str, height: int = HEIGHT) -> list[str]:
    """The opening of a chart: the ``<svg>`` element, its title and the plot's border."""
    t = escape(title)
    return [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" '
        f'viewBox="0 0 {WIDTH} {height}" role="img" aria-label="{t}">',
        f"<title>{t}</title>",
        f'<rect x="{LEFT}" y="{TOP}" width="{WIDTH - LEFT - RIGHT}" height="{height - TOP - BOTTOM}" '
        'fill="none" stroke="#ccc"/>',
    ]


def text(x: float, y: float, content: str, anchor: str = "start") -> str:
    return f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}" {STYLE}>{escape(content)}</text>'


def _scale(series: Sequence[Series]) -> float:
    peak = max((v for s in series for v in s.values if v is not None), default=0.0)
    return peak if peak > 0 else 1.0


def _legend(series: Sequence[Series]) -> list[str]:
    out, x = [], float(LEFT)
    for i, s in enumerate(series):
        colour = PALETTE[i % len(PALETTE)]
        out.append(f'<rect x="{x:.1f}" y="4" width="10" height="10" fill="{colour}"/>')
        out.append(text(x + 14, 13, s.name))
        x += 24 + 7 * len(s.name)
    return out


def _axis(categories: Sequence[str], peak: float, unit: str, xs: Sequence[float]) -> list[str]:
    bottom = HEIGHT - BOTTOM + 15
    out = [text(LEFT - 4, TOP + 4, f"{peak:g}{unit}", "end"), text(LEFT - 4, HEIGHT - BOTTOM, "0", "end")]
    every = max(1, len(categories) // 8)  # at most about 8 labels under the axis
    out += [text(x, bottom, c, "middle") for i, (c, x) in enumerate(zip(categories, xs, strict=True))
            if i % every == 0]  # fmt: skip
    return out


def bars(title: str, categories: Sequence[str], series: Sequence[Series], unit: str = "") -> str:
    """Grouped columns: one group per category, one column per series, from zero."""
    peak = _scale(series)
    room = (WIDTH - LEFT - RIGHT) / max(len(categories), 1)
    width = max((room - 4) / max(len(series), 1), 1.0)
    parts = frame(title)
    for si, s in enumerate(series):
        colour = PALETTE[si % len(PALETTE)]
        for ci, value in enumerate(s.values):
            if not value:
                continue
            h = (HEIGHT - TOP - BOTTOM) * value / peak
            x = LEFT + ci * room + 2 + si * width
            parts.append(f'<rect class="bar" x="{x:.1f}" y="{HEIGHT - BOTTOM - h:.1f}" width="{width:.1f}" '
                         f'height="{h:.1f}" fill="{colour}"><title>{escape(s.name)} '
                         f"{escape(categories[ci])}: {value:g}{escape(unit)}</title></rect>")  # fmt: skip
    parts += _legend(series)
    parts += _axis(categories, peak, unit, [LEFT + (i + 0.5) * room for i in range(len(categories))])
    parts.append("</svg>")
    return "\n".join(parts)


def lines(title: str, categories: Sequence[str], series: Sequence[Series], unit: str = "") -> str:
    """One polyline per series over the categories, from zero; a missing value breaks no line, it
    is skipped."""
    peak = _scale(series)
    step = (WIDTH - LEFT - RIGHT) / max(len(categories), 1)
    xs = [LEFT + (i + 0.5) * step for i in range(len(categories))]
    parts = frame(title)
    for si, s in enumerate(series):
        pts = [(xs[i], HEIGHT - BOTTOM - (HEIGHT - TOP - BOTTOM) * v / peak)
               for i, v in enumerate(s.values) if v is not None]  # fmt: skip
        colour = PALETTE[si % len(PALETTE)]
        if pts:
            parts.append(line("series", pts, colour))
            parts += [f'<circle cx="{x:.1f}" cy="{y:.1f}" r="2.5" fill="{colour}"/>' for x, y in pts]
    parts += _legend(series)
    parts += _axis(categories, peak, unit, xs)
    parts.append("</svg>")
    return "\n".join(parts)
