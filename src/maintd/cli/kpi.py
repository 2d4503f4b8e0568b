"""``maintd kpi``: every KPI over a period, with its target and how it was computed."""

from __future__ import annotations

from datetime import UTC, datetime

import typer
from rich.table import Table
from rich.text import Text

from maintd.cli.common import DbOption, JsonOption, console, emit_json, fail, open_store, table
from maintd.kpi.incidents import PRIORITIES
from maintd.kpi.model import Figure
from maintd.kpi.report import GROUPS, compute
from maintd.plan.types import parse_duration


def kpi(
    period: str = typer.Option("30d", "--period", help="How far back from now: 7d, 30d, 12w, 1h30m."),
    end: str | None = typer.Option(None, help="The period's end, ISO 8601 with a zone (default: now)."),
    group: str | None = typer.Option(None, help="Only this group: " + ", ".join(GROUPS) + "."),
    db: str | None = DbOption,
    as_json: bool = JsonOption,
) -> None:
    """KPIs computed from what maintd recorded: the seed's targets, incidents, maintenance, delivery."""
    if group is not None and group not in GROUPS:
        fail(f"unknown group {group!r}: use {', '.join(GROUPS)}")
    try:
        span = parse_duration(period)
    except ValueError as exc:
        fail(f"--period: {exc}")
    now = datetime.now(UTC)
    until = _end(end) if end is not None else now
    store = open_store(db)
    try:
        with store.read() as session:
            report = compute(session, end=until, period=span, now=now)
    except ValueError as exc:
        fail(f"--period: {exc}")
    if group is not None:
        report.figures = [f for f in report.figures if f.group == group]
    if as_json:
        emit_json(report)
        return
    title = f"KPIs {report.start:%Y-%m-%d %H:%M} → {report.end:%Y-%m-%d %H:%M} UTC"
    t = table(title, ["group", "kpi", "value", "target", "met", "how"])
    # "how" is long, explanatory text: it wraps, and the figures keep their width.
    t.columns[-1].no_wrap, t.columns[-1].overflow, t.columns[-1].ratio = False, "fold", 1
    for column, width in zip(t.columns, (11, 28, 12, 12, 3), strict=False):
        column.min_width = width
    by_priority = [f for f in report.figures if f.name.split(".")[1] in BY_PRIORITY]
    for f in report.figures:
        if f not in by_priority:
            t.add_row(f.group, f.title, _value(f), _target(f), _met(f), Text(f.how))
    console.print(t)
    if any(f.value for f in by_priority if f.name.startswith("incidents.count.")):
        console.print(_priority_table({f.name: f for f in by_priority}))


BY_PRIORITY = ("count", "mtta", "mtta_p50", "mtta_p90", "mttr", "mttr_p50", "mttr_p90")


def _priority_table(figures: dict[str, Figure]) -> Table:
    """Incident response times, one row per priority: the figures too many to list one a line."""
    t = table("incidents opened in the period, by priority", ["priority", *BY_PRIORITY])
    for priority in PRIORITIES:
        row = [figures.get(f"incidents.{key}.{priority}") for key in BY_PRIORITY]
        if row[0] is None or not row[0].value:
            continue
        t.add_row(priority, *(_value(f) if f is not None else "" for f in row))
    return t


def _end(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        fail(f"--end: {text!r} is not an ISO 8601 time like 2026-11-27T00:00:00Z")
    if value.tzinfo is None:
        fail(f"--end: {text!r} needs a time zone, e.g. 2026-11-27T00:00:00Z")
    return value


def _number(value: float, unit: str) -> str:
    if unit == "%":
        return f"{value:.2f} %"
    if unit == "s":
        return _seconds(value)
    if unit == "count":
        return f"{value:.0f}"
    return f"{value:.2f} {unit}"


def _seconds(value: float) -> str:
    if value < 60:
        return f"{value:.1f} s"
    minutes, seconds = divmod(round(value), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{seconds:02d}s"


def _value(f: Figure) -> str:
    return "-" if f.value is None else _number(f.value, f.unit)


def _target(f: Figure) -> str:
    if f.target is None:
        return ""
    return ("≥ " if f.better == "higher" else "≤ ") + _number(f.target, f.unit)


def _met(f: Figure) -> Text:
    met = f.met
    if met is None:
        return Text("")
    return Text("yes", style="green") if met else Text("no", style="bold red")
