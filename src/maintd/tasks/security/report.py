"""The daily security report: Markdown and HTML, one pair per task, target and day.

Everything that came from a scanner or a file is escaped (html.escape; ``|`` and line breaks
in Markdown tables): a finding's title is not ours to trust.
"""

from __future__ import annotations

import html
import os
import re
import tempfile
from dataclasses import dataclass
from datetime import datetime

from maintd.tasks.security.findings import Finding
from maintd.tasks.security.ledger import Ledger, Tracked
from maintd.tasks.security.proposals import Proposal

_COLUMNS = ("severity", "scanner", "id", "where", "title", "fixed in", "first seen")


@dataclass(frozen=True)
class Report:
    title: str
    when: datetime
    ledger: Ledger
    proposals: list[Proposal]
    problems: list[str]  # scans that could not run, and why
    notes: list[str]

    def sections(self) -> list[tuple[str, list[Tracked]]]:
        return [
            ("New", self.ledger.new),
            ("Still open", self.ledger.open),
            ("Not rescanned (their scan failed)", self.ledger.unscanned),
            ("Fixed", self.ledger.fixed),
        ]


def paths(directory: str, task: str, target: str, when: datetime) -> tuple[str, str]:
    stem = f"security-{when.date().isoformat()}-{_safe(task)}-{_safe(target)}"
    return os.path.join(directory, stem + ".md"), os.path.join(directory, stem + ".html")


def write(report: Report, md_path: str, html_path: str) -> None:
    """Write both files (each replaced whole: a reader never sees half a report); raises OSError."""
    os.makedirs(os.path.dirname(md_path) or ".", exist_ok=True)
    _atomic(md_path, markdown(report))
    _atomic(html_path, to_html(report))


def markdown(report: Report) -> str:
    lines = [f"# {_md(report.title)}", "", f"Scanned at {report.when.isoformat()}.", ""]
    lines += [_summary(report), ""]
    if report.problems:
        lines += ["## Scans that could not run", "", *[f"- {_md(p)}" for p in report.problems], ""]
    for name, group in report.sections():
        lines += [f"## {name} ({len(group)})", ""]
        if group:
            lines += ["| " + " | ".join(_COLUMNS) + " |", "|" + " --- |" * len(_COLUMNS)]
            lines += ["| " + " | ".join(_md(cell) for cell in _cells(t)) + " |" for t in group]
        else:
            lines.append("None.")
        lines.append("")
    lines += [f"## Proposed patch updates ({len(report.proposals)})", ""]
    lines += [f"- {_md(p.line)}" for p in report.proposals] or ["None."]
    lines += ["", "Proposals only: no requirement file was changed.", ""]
    if report.notes:
        lines += ["## Notes", "", *[f"- {_md(n)}" for n in report.notes], ""]
    return "\n".join(lines)


def to_html(report: Report) -> str:
    e = html.escape
    parts = [
        "<!doctype html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{e(report.title)}</title>",
        "<style>body{font-family:sans-serif}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:2px 6px;text-align:left}"
        ".critical{background:#fdd}.high{background:#fed}</style>",
        "</head><body>",
        f"<h1>{e(report.title)}</h1>",
        f"<p>Scanned at {e(report.when.isoformat())}.</p>",
        f"<p>{e(_summary(report))}</p>",
    ]
    if report.problems:
        parts += ["<h2>Scans that could not run</h2>", _ul(report.problems)]
    for name, group in report.sections():
        parts.append(f"<h2>{e(name)} ({len(group)})</h2>")
        if not group:
            parts.append("<p>None.</p>")
            continue
        parts.append("<table><tr>" + "".join(f"<th>{e(c)}</th>" for c in _COLUMNS) + "</tr>")
        for tracked in group:
            cells = "".join(f"<td>{e(cell)}</td>" for cell in _cells(tracked))
            parts.append(f'<tr class="{e(str(tracked.finding.severity))}">{cells}</tr>')
        parts.append("</table>")
    parts.append(f"<h2>Proposed patch updates ({len(report.proposals)})</h2>")
    parts.append(_ul([p.line for p in report.proposals]) if report.proposals else "<p>None.</p>")
    parts.append("<p>Proposals only: no requirement file was changed.</p>")
    if report.notes:
        parts += ["<h2>Notes</h2>", _ul(report.notes)]
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def _summary(report: Report) -> str:
    ledger = report.ledger
    return (
        f"{len(ledger.new)} new, {len(ledger.open)} still open, {len(ledger.fixed)} fixed"
        + (f", {len(ledger.unscanned)} not rescanned" if ledger.unscanned else "")
        + f"; {len(report.proposals)} patch updates proposed."
    )


def _cells(tracked: Tracked) -> list[str]:
    f: Finding = tracked.finding
    return [str(f.severity), f.scanner, f.id, f.where, f.title, f.fixed_in or "", tracked.first_seen]


def _ul(items: list[str]) -> str:
    return "<ul>" + "".join(f"<li>{html.escape(item)}</li>" for item in items) + "</ul>"


def _md(text: str) -> str:
    """Plain text in a Markdown table or list: no breaking out of the cell, no markup, no HTML."""
    text = " ".join(text.split())
    text = re.sub(r"([\\`*_\[\]|#<>!])", r"\\\1", text)
    return text


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name)


def _atomic(path: str, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path) or ".", prefix=".tmp-", suffix=".report")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
