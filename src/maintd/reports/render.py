"""A report document as one HTML page (charts inline, everything escaped, no external assets) and
as Markdown (charts as SVG files in a folder beside it)."""

from __future__ import annotations

import re
from html import escape
from pathlib import Path

from maintd.reports.model import Block, Bullets, Chart, Document, Table, Text

STYLE = (
    "body{font-family:sans-serif;margin:2em;max-width:72em}table{border-collapse:collapse}"
    "td,th{border:1px solid #ccc;padding:2px 6px;font-size:13px;text-align:left}"
)


def _head(doc: Document) -> str:
    return (f"{doc.title}: {doc.start:%Y-%m-%d} to {doc.end:%Y-%m-%d} (end excluded), computed "
            f"{doc.computed_at:%Y-%m-%d %H:%M} UTC")  # fmt: skip


def chart_file(doc: Document, chart: Chart) -> str:
    return f"{doc.name}-charts/" + re.sub(r"[^A-Za-z0-9_.-]+", "_", chart.name) + ".svg"


def _md(text: str) -> str:
    """Markdown renderers pass raw HTML through: a recorded title must not become markup there either."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _md_cell(text: str) -> str:
    return _md(text).replace("|", "\\|").replace("\n", " ")


def _md_block(doc: Document, block: Block) -> list[str]:
    if isinstance(block, Text):
        return [_md(block.text), ""]
    if isinstance(block, Bullets):
        return [*(f"- {_md(item)}" for item in block.items), ""]
    if isinstance(block, Table):
        if not block.rows:
            return [_md(block.empty), ""]
        return [
            "| " + " | ".join(_md_cell(c) for c in block.columns) + " |",
            "|" + "---|" * len(block.columns),
            *("| " + " | ".join(_md_cell(c) for c in row) + " |" for row in block.rows),
            "",
        ]
    return [f"![{_md_cell(block.name)}]({chart_file(doc, block)})", ""]


def markdown(doc: Document) -> str:
    lines = [f"# {_md(doc.title)}", "", _md(_head(doc)), ""]
    for section in doc.sections:
        lines += [f"## {_md(section.title)}", ""]
        for block in section.blocks:
            lines += _md_block(doc, block)
    return "\n".join(lines)


def _html_block(block: Block) -> str:
    if isinstance(block, Text):
        return f"<p>{escape(block.text)}</p>"
    if isinstance(block, Bullets):
        return "<ul>" + "".join(f"<li>{escape(i)}</li>" for i in block.items) + "</ul>"
    if isinstance(block, Table):
        if not block.rows:
            return f"<p>{escape(block.empty)}</p>"
        head = "".join(f"<th>{escape(c)}</th>" for c in block.columns)
        body = "".join("<tr>" + "".join(f"<td>{escape(c)}</td>" for c in row) + "</tr>" for row in block.rows)
        return f"<table><tr>{head}</tr>{body}</table>"
    return f'<figure class="chart">{block.svg}</figure>'  # escaped where it was drawn (maintd.charts)


def html(doc: Document) -> str:
    parts = [
        f'<!doctype html>\n<html lang="en"><head><meta charset="utf-8"><title>{escape(doc.title)}</title>'
        f"<style>{STYLE}</style></head><body><h1>{escape(doc.title)}</h1><p>{escape(_head(doc))}</p>"
    ]
    for section in doc.sections:
        parts.append(f"<section><h2>{escape(section.title)}</h2>")
        parts += [_html_block(b) for b in section.blocks]
        parts.append("</section>")
    parts.append("</body></html>\n")
    return "".join(parts)


def planned(doc: Document, out: Path) -> list[Path]:
    """The files ``write`` would write."""
    charts = [out / chart_file(doc, b) for s in doc.sections for b in s.blocks if isinstance(b, Chart)]
    return [out / f"{doc.name}.html", out / f"{doc.name}.md", *charts]


def write(doc: Document, out: Path) -> list[Path]:
    """NAME.html, NAME.md and NAME-charts/*.svg under ``out`` (made if missing); the paths written."""
    (out / f"{doc.name}-charts").mkdir(parents=True, exist_ok=True)
    written = []
    for s in doc.sections:
        for b in s.blocks:
            if isinstance(b, Chart):
                path = out / chart_file(doc, b)
                path.write_text(b.svg + "\n", encoding="utf-8")
                written.append(path)
    for path, text in ((out / f"{doc.name}.html", html(doc)), (out / f"{doc.name}.md", markdown(doc))):
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written
