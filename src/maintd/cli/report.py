"""``maintd report NAME``: a report written as files, on demand. One subcommand per report."""

from __future__ import annotations

from pathlib import Path

import typer

from maintd.capacity.render import write
from maintd.cli.capacity import (
    AtOption,
    HistoryOption,
    LimitOption,
    MetricOption,
    TargetOption,
    TaskOption,
    compute,
)
from maintd.cli.common import DbOption, console, fail

app = typer.Typer(help="Write a report as files (HTML with charts, and Markdown).", no_args_is_help=True)


@app.command("capacity")
def capacity(
    out: Path = typer.Option(Path("."), "--out", help="The folder to write into (made if missing)."),
    task: str | None = TaskOption,
    target: str | None = TargetOption,
    metric: str | None = MetricOption,
    limit: float | None = LimitOption,
    history: str = HistoryOption,
    at: str | None = AtOption,
    db: str | None = DbOption,
) -> None:
    """capacity.html (charts inline) and capacity.md (charts as SVG files beside it)."""
    report = compute(task, target, metric, limit, history, at, db)
    try:
        written = write(report, out)
    except OSError as exc:
        fail(f"--out {out}: cannot write the report: {exc.strerror or exc} ({exc.filename or out})")
    for path in written:
        console.print(str(path))
