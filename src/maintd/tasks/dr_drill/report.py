"""The drill report: Markdown and HTML, this drill and the earlier ones (from the runs' metrics).

Plain string building: every value from the drill (paths, messages, table names) is escaped,
``html.escape`` for HTML and pipe/newline escaping for Markdown tables.
"""

from __future__ import annotations

import html
import os
import re
from dataclasses import dataclass
from pathlib import Path

from maintd.checks.base import Change, RunContext, RunSample, Status
from maintd.tasks.dr_drill import DrDrillConfig
from maintd.tasks.dr_drill.drill import Drill

PHASES = ("baseline", "backup", "start", "replay", "promote", "restore", "verify")


@dataclass(frozen=True)
class Row:
    when: str
    status: str
    rto: str
    rpo: str


async def write_report(cfg: DrDrillConfig, ctx: RunContext, drill: Drill, head: str) -> None:
    """Write both files (atomically); a failure to write is a critical line, never an exception."""
    assert cfg.report_dir is not None
    history = [_row(s) for s in await ctx.history(cfg.history_runs)] if cfg.history_runs else []
    now = Row(drill.started_at.isoformat(timespec="seconds"), drill.status.value, *_rto_rpo(drill.metrics))
    stamp = drill.started_at.strftime("%Y%m%dT%H%M%SZ")
    base = re.sub(r"[^A-Za-z0-9_.-]", "_", f"dr-{ctx.task.name}-{ctx.target.name}-{stamp}")
    title = f"DR drill {ctx.task.name} on {ctx.target.name}, {now.when}"
    written = []
    for ext, text in (
        ("md", markdown(title, head, drill, now, history)),
        ("html", to_html(title, head, drill, now, history)),
    ):
        path = Path(cfg.report_dir) / f"{base}.{ext}"
        try:
            _write(path, text)
        except OSError as exc:
            drill.add(Status.critical, f"report {path}: {exc.strerror or exc}")
            continue
        written.append(str(path))
        drill.changes.append(Change("report", str(path)))
    if written:
        drill.lines.append(f"report: {' and '.join(written)}")


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        tmp.write_text(text)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _rto_rpo(metrics: dict[str, float]) -> tuple[str, str]:
    return tuple(  # type: ignore[return-value]
        f"{metrics[key]:.1f}s" if key in metrics else "-" for key in ("rto_seconds", "rpo_seconds")
    )


def _row(sample: RunSample) -> Row:
    return Row(
        sample.started_at.isoformat(timespec="seconds"), sample.status.value, *_rto_rpo(sample.metrics)
    )


def _md(text: str) -> str:
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ").replace("<", "&lt;")


def markdown(title: str, head: str, drill: Drill, now: Row, history: list[Row]) -> str:
    out = [f"# {_md(title)}", "", f"**{_md(head)}**", "", f"Status: **{now.status}**", ""]
    out += ["| phase | seconds |", "| --- | --- |"]
    out += [f"| {p} | {drill.phases[p]:.3f} |" for p in PHASES if p in drill.phases]
    out += [f"| **RTO** | {now.rto} |", f"| **RPO** | {now.rpo} |", "", "## Findings", ""]
    out += [f"- {_md(line)}" for line in drill.lines] or ["- (none)"]
    out += ["", "## Changes", ""]
    out += [f"- {_md(c.action)} `{_md(c.target)}`" for c in drill.changes] or ["- (none)"]
    out += ["", "## History", "", "| drill | status | RTO | RPO |", "| --- | --- | --- | --- |"]
    out += [f"| {r.when} | {r.status} | {r.rto} | {r.rpo} |" for r in [now, *history]]
    return "\n".join(out) + "\n"


def to_html(title: str, head: str, drill: Drill, now: Row, history: list[Row]) -> str:
    e = html.escape
    phases = "".join(
        f"<tr><td>{e(p)}</td><td>{drill.phases[p]:.3f}</td></tr>" for p in PHASES if p in drill.phases
    )
    findings = "".join(f"<li>{e(line)}</li>" for line in drill.lines) or "<li>(none)</li>"
    changes = (
        "".join(f"<li>{e(c.action)} <code>{e(c.target)}</code></li>" for c in drill.changes)
        or "<li>(none)</li>"
    )
    rows = "".join(
        f"<tr><td>{e(r.when)}</td><td>{e(r.status)}</td><td>{e(r.rto)}</td><td>{e(r.rpo)}</td></tr>"
        for r in [now, *history]
    )
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{e(title)}</title></head><body>\n<h1>{e(title)}</h1>\n"
        f"<p><strong>{e(head)}</strong></p>\n<p>Status: <strong>{e(now.status)}</strong></p>\n"
        f"<table><tr><th>phase</th><th>seconds</th></tr>{phases}"
        f"<tr><th>RTO</th><td>{e(now.rto)}</td></tr><tr><th>RPO</th><td>{e(now.rpo)}</td></tr></table>\n"
        f"<h2>Findings</h2><ul>{findings}</ul>\n<h2>Changes</h2><ul>{changes}</ul>\n"
        f"<h2>History</h2><table><tr><th>drill</th><th>status</th><th>RTO</th><th>RPO</th></tr>{rows}</table>\n"
        "</body></html>\n"
    )
