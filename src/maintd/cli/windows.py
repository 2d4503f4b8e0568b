"""``maintd windows``: the plan's declared maintenance windows, open now or when they open next."""

from __future__ import annotations

from datetime import datetime

import typer
from rich.text import Text

from maintd.alerts.muting import window_status
from maintd.cli.common import DbOption, JsonOption, console, emit_json, fail, open_store, table, when
from maintd.cli.run import resolve_plan
from maintd.clock import SystemClock, utc
from maintd.plan.incidents import MaintenanceWindow
from maintd.plan.loader import PlanError, load_plan
from maintd.registry import Registry


def _declared(plan_path: str | None, db: str | None) -> list[MaintenanceWindow]:
    """From the plan at ``plan_path`` (the store is not opened), else from the active plan."""
    if not plan_path:
        return list(resolve_plan(open_store(db), Registry.default(), None).plan.incidents.maintenance_windows)
    try:
        return list(load_plan(plan_path, Registry.default()).plan.incidents.maintenance_windows)
    except PlanError as exc:
        fail("the plan is not valid:\n" + "\n".join(map(str, exc.problems)))


def windows(
    at: datetime | None = typer.Option(
        None, "--at", help="As at this time (ISO 8601, UTC if no offset; default: now)."
    ),
    plan_path: str | None = typer.Option(
        None, "--plan", envvar="MAINTD_PLAN", help="Plan to read the windows from (default: the active plan)."
    ),
    db: str | None = DbOption,
    as_json: bool = JsonOption,
) -> None:
    """Declared maintenance windows: whether each is open, until when, and its next opening."""
    moment = utc(at) if at else SystemClock().now()
    found = [window_status(w, moment) for w in _declared(plan_path, db)]
    if as_json:
        emit_json(found)
        return
    if not found:
        console.print("the plan declares no maintenance windows (incidents.maintenance_windows)")
        return
    t = table(
        f"Maintenance windows at {when(moment)} UTC",
        ["name", "state", "when", "next opening (UTC)", "mutes", "comment"],
    )
    for w in found:
        state = f"[bold yellow]open[/] until {when(w.open_until)}" if w.open else "closed"
        span = w.window or f"once, {when(w.start)} to {when(w.end)}"
        upcoming = when(w.next_start)
        t.add_row(w.name, state, Text(span), upcoming, Text(", ".join(w.match)), Text(w.comment))
    console.print(t)
