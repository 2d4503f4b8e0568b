"""``maintd slo``: each SLO of the active plan with its error budget, burn rates and alerts."""

from __future__ import annotations

from datetime import UTC, datetime

import typer

from maintd.cli.common import DbOption, JsonOption, console, emit_json, fail, open_store, table
from maintd.slo.budget import SloStatus
from maintd.slo.stored import statuses


def slo(
    name: str | None = typer.Option(None, "--name", help="Only this SLO."),
    at: str | None = typer.Option(
        None, "--at", help="Evaluate at this time, ISO 8601 with a zone (default: now)."
    ),
    db: str | None = DbOption,
    as_json: bool = JsonOption,
) -> None:
    """SLOs: availability against the objective, error budget left, burn rates and burning alerts."""
    now = _at(at) if at is not None else datetime.now(UTC)
    store = open_store(db)
    with store.read() as session:
        found = statuses(session, now, name=name)
    if name is not None and not found:
        fail(f"no SLO named {name!r} in the active plan")
    if as_json:
        emit_json(found)
        return
    t = table(
        f"SLOs at {now:%Y-%m-%d %H:%M} UTC",
        ["slo", "target", "objective", "availability", "budget left", "burn 5m/30m/1h/6h/3d", "alerting"],
    )
    for s in found:
        t.add_row(
            s.name,
            s.target,
            f"{s.objective:g}% / {s.window}",
            "-" if s.availability is None else f"{s.availability:.3f}%",
            _budget(s),
            " ".join("-" if b.rate is None else f"{b.rate:.1f}x" for b in s.burn_rates),
            ", ".join(a for a, on in (("page", s.page), ("ticket", s.ticket)) if on) or "no",
        )
    console.print(t)


def _budget(s: SloStatus) -> str:
    b = s.budget
    return f"{b.remaining_percent:.1f}% ({b.remaining_seconds / 60:.1f} of {b.allowed_seconds / 60:.1f} min)"


def _at(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        fail(f"--at: {text!r} is not an ISO 8601 time like 2026-11-27T00:00:00Z")
    if value.tzinfo is None:
        fail(f"--at: {text!r} needs a time zone, e.g. 2026-11-27T00:00:00Z")
    return value
