"""``maintd capacity``: each series' growth, the chosen model, projections and time to its limit."""

from __future__ import annotations

from datetime import UTC, datetime

import typer
from rich.text import Text

from maintd.capacity.model import CapacityReport
from maintd.capacity.render import COLUMNS, row
from maintd.capacity.review import review
from maintd.cli.common import DbOption, JsonOption, console, emit_json, fail, open_store, table
from maintd.plan.types import parse_duration

TaskOption = typer.Option(None, "--task", help="Only this task's series.")
TargetOption = typer.Option(None, "--target", help="Only this target's series.")
MetricOption = typer.Option(
    None, "--metric", help="Only this metric (any metric a run recorded, e.g. used_bytes:/var)."
)
LimitOption = typer.Option(None, "--limit", help="The limit for every selected series, instead of their own.")
HistoryOption = typer.Option("365d", "--history", help="How far back the runs are read: 90d, 52w.")
AtOption = typer.Option(None, "--at", help="Review as of this time, ISO 8601 with a zone (default: now).")


def capacity(
    task: str | None = TaskOption,
    target: str | None = TargetOption,
    metric: str | None = MetricOption,
    limit: float | None = LimitOption,
    history: str = HistoryOption,
    at: str | None = AtOption,
    db: str | None = DbOption,
    as_json: bool = JsonOption,
) -> None:
    """Capacity: growth, projections at 3/6/12 months with 95 % intervals, and when each series
    reaches its limit (see docs/capacity.md)."""
    report = compute(task, target, metric, limit, history, at, db)
    if as_json:
        emit_json(report)
        return
    if not report.forecasts:
        console.print(f"no capacity series in the runs since {report.since:%Y-%m-%d}")
        return
    t = table(f"capacity from the runs since {report.since:%Y-%m-%d}", list(COLUMNS))
    for f in report.forecasts:
        t.add_row(*(Text(cell) for cell in row(f)))
    console.print(t)
    for r in report.recommendations:
        style = "bold red" if r.urgency in ("now", "3 months") else "yellow"
        console.print(Text(f"{r.urgency}: {r.text}", style=style))


def compute(
    task: str | None,
    target: str | None,
    metric: str | None,
    limit: float | None,
    history: str,
    at: str | None,
    db: str | None,
) -> CapacityReport:
    """The review the ``capacity`` and ``report capacity`` commands share; bad options fail here."""
    try:
        span = parse_duration(history)
    except ValueError as exc:
        fail(f"--history: {exc}")
    now = _at(at) if at is not None else datetime.now(UTC)
    store = open_store(db)
    try:
        with store.read() as session:
            return review(
                session, now=now, history=span, task=task, target=target, metric=metric, limit=limit
            )
    except ValueError as exc:
        fail(f"--history: {exc}")


def _at(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        fail(f"--at: {text!r} is not an ISO 8601 time like 2026-11-27T00:00:00Z")
    if value.tzinfo is None:
        fail(f"--at: {text!r} needs a time zone, e.g. 2026-11-27T00:00:00Z")
    return value
