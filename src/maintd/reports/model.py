"""A report as a document of sections and blocks, rendered to HTML and Markdown (render.py)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True)
class Text:
    text: str


@dataclass(frozen=True)
class Bullets:
    items: list[str]


@dataclass(frozen=True)
class Table:
    columns: list[str]
    rows: list[list[str]]
    empty: str = "Nothing to show."


@dataclass(frozen=True)
class Chart:
    name: str  # the SVG file's name (without .svg) beside the Markdown
    svg: str  # a standalone <svg> element from maintd.charts: its text is escaped there


Block = Text | Bullets | Table | Chart


@dataclass
class Section:
    title: str
    blocks: list[Block] = field(default_factory=list)


@dataclass
class Document:
    name: str  # the file stem: kpi, monthly-review, monthly-audit
    title: str
    start: datetime
    end: datetime
    computed_at: datetime
    sections: list[Section] = field(default_factory=list)

    def section(self, title: str) -> Section:
        for s in self.sections:
            if s.title == title:
                return s
        raise KeyError(title)
