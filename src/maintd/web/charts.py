"""Chart geometry for inline SVG drawn by the templates (templates/_charts.html): no JavaScript.

Here only numbers become coordinates; the labels go through the templates' autoescaping.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from maintd.kpi.model import Figure

WIDTH = 640
BAR_AREA = 160  # the height of the columns' area
ROW = 22  # one horizontal bar per row
MARGIN = 20  # left and right of the columns, so the first and last day's labels fit


@dataclass(frozen=True)
class Column:
    x: float
    y: float
    width: float
    height: float
    label: str  # the day, shown under every 7th column
    value: int
    show_label: bool

    @property
    def middle(self) -> float:
        return round(self.x + self.width / 2, 1)


@dataclass(frozen=True)
class Columns:
    columns: list[Column]
    peak: int
    width: int
    height: int


@dataclass(frozen=True)
class Bar:
    y: float
    width: float  # of the value, out of WIDTH - the label column
    target_x: float | None
    label: str
    value: str
    met: bool | None


@dataclass(frozen=True)
class Bars:
    bars: list[Bar]
    label_width: int
    width: int
    height: int


def per_day(moments: Sequence[datetime], end: datetime, days: int) -> Columns:
    """How many of ``moments`` fall on each of the ``days`` UTC days up to ``end``'s, as columns."""
    last = end.date()
    first = last - timedelta(days=days - 1)
    counts = Counter(m.date() for m in moments if first <= m.date() <= last)
    peak = max(counts.values(), default=0)
    step = (WIDTH - 2 * MARGIN) / days
    out = []
    for i in range(days):
        day: date = first + timedelta(days=i)
        value = counts.get(day, 0)
        height = BAR_AREA * value / peak if peak else 0.0
        out.append(
            Column(
                x=round(MARGIN + i * step + 1, 1),
                y=round(14 + BAR_AREA - height, 1),
                width=round(max(step - 2, 1), 1),
                height=round(height, 1),
                label=day.strftime("%m-%d"),
                value=value,
                show_label=(days - 1 - i) % 7 == 0,
            )
        )
    return Columns(out, peak, WIDTH, BAR_AREA + 34)


def percentages(figures: Sequence[Figure], label_width: int = 260) -> Bars:
    """Each percentage KPI as a bar out of 100 %, with its target marked."""
    room = WIDTH - label_width - 60
    out = []
    for i, figure in enumerate(f for f in figures if f.unit == "%" and f.value is not None):
        value = max(0.0, min(100.0, figure.value or 0.0))
        target = figure.target
        out.append(
            Bar(
                y=i * ROW,
                width=round(room * value / 100, 1),
                target_x=round(label_width + room * target / 100, 1) if target is not None else None,
                label=figure.title,
                value=f"{figure.value:.1f} %",
                met=figure.met,
            )
        )
    return Bars(out, label_width, WIDTH, max(len(out), 1) * ROW)
