"""``maintd silence add|list|expire``: keep matching new alerts out of incidents for a while."""

from __future__ import annotations

from datetime import UTC, datetime

import typer
from rich.text import Text

from maintd import views
from maintd.alerts.silences import create_silence, expire_silence
from maintd.cli.common import DbOption, JsonOption, actor, console, emit_json, fail, open_store, table, when
from maintd.clock import SystemClock
from maintd.plan.incidents import Matcher
from maintd.plan.types import parse_duration

app = typer.Typer(help="Silences: matching new alerts are stored but open no incident.", no_args_is_help=True)


@app.command()
def add(
    match: list[str] = typer.Option(
        ...,
        "--match",
        "-m",
        help="A matcher: name=value, name!=value, name=~regex, name!~regex (repeatable).",
    ),
    for_: str | None = typer.Option(None, "--for", help="How long, e.g. 2h or 1h30m."),
    until: datetime | None = typer.Option(None, help="Until this time (ISO 8601, UTC if no offset)."),
    starts: datetime | None = typer.Option(None, help="From this time (default: now)."),
    comment: str = typer.Option(..., help="Why: required."),
    db: str | None = DbOption,
    as_json: bool = JsonOption,
) -> None:
    """Silence new alerts whose labels match every --match, --for a while or --until a time."""
    if (for_ is None) == (until is None):
        fail("give exactly one of --for and --until")
    try:
        matchers = [Matcher.parse(m) for m in match]
        now = SystemClock().now()
        starts_at = _aware(starts) or now
        ends_at = _aware(until) or starts_at + parse_duration(for_)
        store = open_store(db)
        with store.write() as session:
            row = create_silence(
                session,
                matchers=matchers,
                starts_at=starts_at,
                ends_at=ends_at,
                created_by=actor(),
                comment=comment,
                now=now,
            )
            shown = views.silence_view(row, now)
    except ValueError as exc:
        fail(str(exc))
    if as_json:
        emit_json(shown)
        return
    console.print(
        f"silence {shown.id} {shown.state} until {when(shown.ends_at)} UTC: {', '.join(shown.matchers)}",
        highlight=False,
        markup=False,
    )


@app.command("list")
def list_(
    include_expired: bool = typer.Option(False, "--all", help="Expired silences too."),
    db: str | None = DbOption,
    as_json: bool = JsonOption,
) -> None:
    """Pending and active silences, newest first."""
    store = open_store(db)
    now = SystemClock().now()
    with store.read() as session:
        found = views.silences(session, now=now, include_expired=include_expired)
    if as_json:
        emit_json(found)
        return
    t = table("silences", ["id", "state", "starts (UTC)", "ends (UTC)", "by", "matchers", "comment"])
    for s in found:
        t.add_row(
            str(s.id),
            s.state,
            when(s.starts_at),
            when(s.ends_at),
            Text(s.created_by),
            Text(", ".join(s.matchers)),
            Text(s.comment),
        )
    console.print(t)


@app.command()
def expire(
    silence_id: int = typer.Argument(..., help="The silence's id."), db: str | None = DbOption
) -> None:
    """End a silence now; new matching alerts open incidents again."""
    store = open_store(db)
    try:
        with store.write() as session:
            expire_silence(session, silence_id, now=SystemClock().now(), actor=actor())
    except LookupError as exc:
        fail(str(exc))
    console.print(f"silence {silence_id} expired", highlight=False)


def _aware(value: datetime | None) -> datetime | None:
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value
