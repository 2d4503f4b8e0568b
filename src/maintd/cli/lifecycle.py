"""``maintd lifecycle ...``, ``maintd docs ...``, ``maintd training ...``: the component inventory,
the documentation registry and the training matrix.

Thin: reads go to maintd.lifecycle against the active (stored) plan; each recording is one call
in one transaction, audited as ``user:<login>``; a refusal is a one-line error.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from typing import TypeVar

import typer
from rich.text import Text
from sqlalchemy.orm import Session

from maintd.cli.common import DbOption, JsonOption, actor, console, emit_json, fail, open_store, table, when
from maintd.clock import clock_from_spec
from maintd.lifecycle import documents, inventory, service, training
from maintd.lifecycle.records import Catalog, LifecycleError
from maintd.plan.lifecycle import Stage
from maintd.settings import Settings

app = typer.Typer(help="Components: stages, versions, end of support.", no_args_is_help=True)
docs_app = typer.Typer(
    help="The documentation registry: reviews, cadence, stale documents.", no_args_is_help=True
)
training_app = typer.Typer(
    help="The training matrix: required trainings, completions, overdue.", no_args_is_help=True
)

NoteOption = typer.Option("", "--note", "-n", help="Why or what, for the audit trail.")
T = TypeVar("T")


def _now() -> datetime:
    """The clock ``maintd serve`` would use (``MAINTD_CLOCK``): the system's, or a test's file."""
    try:
        return clock_from_spec(Settings.from_env().clock).now()
    except (OSError, ValueError) as exc:
        fail(f"cannot read the clock: {exc}")


def _record(db: str | None, do: Callable[[Session, Catalog], T]) -> T:
    try:
        with open_store(db).write() as session:
            return do(session, Catalog.stored(session))
    except LifecycleError as exc:
        fail(str(exc))


def _read(db: str | None, do: Callable[[Session, Catalog], T]) -> T:
    try:
        with open_store(db).read() as session:
            return do(session, Catalog.stored(session))
    except LifecycleError as exc:
        fail(str(exc))


def _date(text: str | None) -> date | None:
    if text is None:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        fail(f"{text!r} is not a date: write YYYY-MM-DD")


def _components(found: list[inventory.ComponentState], title: str) -> None:
    t = table(title, ["component", "area", "stage", "version", "support", "ends", "notice", "owner"])
    for c in found:
        notice = Text("EOL notice", style="bold yellow") if c.on_notice else Text("-")
        t.add_row(
            c.name, c.category, c.stage, c.version, c.support, c.end_of_support.isoformat(), notice, c.owner
        )
    console.print(t)


@app.command("components")
def components(db: str | None = DbOption, as_json: bool = JsonOption) -> None:
    """Every component: stage, version in use, its support level and end of support."""
    found = _read(db, lambda s, c: inventory.states(s, c, _now()))
    if as_json:
        emit_json(found)
        return
    _components(found, "components")


@app.command("transition")
def transition(
    name: str = typer.Argument(..., help="The component."),
    to: Stage | None = typer.Option(None, "--to", help="The next stage."),
    version: str | None = typer.Option(None, "--version", help="The version now in use."),
    released: str | None = typer.Option(
        None, "--released", help="Its release date (YYYY-MM-DD), if unlisted."
    ),
    note: str = NoteOption,
    db: str | None = DbOption,
) -> None:
    """Move a component to its next stage and/or to another version (an event, with you as actor)."""
    day = _date(released)
    found = _record(
        db,
        lambda s, c: service.transition(
            s,
            c,
            component=name,
            to=to,
            version=version,
            released=day,
            note=note,
            actor=actor(),
            now=_now(),
        ),
    )
    console.print(
        f"{name}: {found.stage} at {found.version} ({found.support}, ends {found.end_of_support})",
        highlight=False,
    )


@app.command("review")
def review(db: str | None = DbOption, as_json: bool = JsonOption) -> None:
    """The annual technology review list: live components by area, soonest end of support first."""
    found = _read(db, lambda s, c: inventory.review_list(s, c, _now()))
    if as_json:
        emit_json(found)
        return
    _components(found, "annual technology review")


def _docs(found: list[documents.DocStatus], title: str) -> None:
    t = table(
        title,
        ["document", "kind", "cadence", "owner", "last reviewed (UTC)", "next due", "stale since", "why"],
    )
    for d in found:
        t.add_row(
            d.name,
            d.kind,
            d.cadence,
            d.owner,
            when(d.last_reviewed),
            when(d.next_due),
            when(d.stale_since),
            Text(d.stale_cause or ""),
        )
    console.print(t)


@docs_app.command("list")
def docs_list(db: str | None = DbOption, as_json: bool = JsonOption) -> None:
    """Every document: owner, review cadence, last review, next due, stale or not."""
    found = _read(db, lambda s, c: documents.statuses(s, c, until=_now()))
    if as_json:
        emit_json(found)
        return
    _docs(found, "documents")


@docs_app.command("stale")
def docs_stale(db: str | None = DbOption, as_json: bool = JsonOption) -> None:
    """Documents needing a review (what they cover changed, or their cadence lapsed), longest first."""
    found = _read(db, lambda s, c: documents.statuses(s, c, until=_now()))
    stale = sorted((d for d in found if d.stale_since), key=lambda d: (d.stale_since, d.name))
    if as_json:
        emit_json(stale)
        return
    _docs(stale, "stale documents")


@docs_app.command("reviewed")
def docs_reviewed(
    name: str = typer.Argument(..., help="The document."), note: str = NoteOption, db: str | None = DbOption
) -> None:
    """Record that you reviewed a document: current again, its cadence counts from now."""
    found = _record(
        db,
        lambda s, c: service.reviewed(s, c, document=name, note=note, actor=actor(), now=_now()),
    )
    console.print(f"{name} reviewed; next review due {when(found.next_due)} UTC", highlight=False)


@training_app.command("matrix")
def training_matrix(db: str | None = DbOption, as_json: bool = JsonOption) -> None:
    """Role → required training → frequency, and who has the role."""
    found = _read(db, lambda s, c: training.matrix(c))
    if as_json:
        emit_json(found)
        return
    t = table("training matrix", ["role", "training", "every", "people"])
    for row in found:
        t.add_row(row.role, row.training, row.every, Text(", ".join(row.people)))
    console.print(t)


@training_app.command("overdue")
def training_overdue(db: str | None = DbOption, as_json: bool = JsonOption) -> None:
    """Required trainings not current: never completed, or due again since."""
    now = _now()
    found = _read(db, lambda s, c: training.statuses(s, c, at=now))
    late = sorted((s for s in found if not s.current), key=lambda s: (s.due_at or now, s.person))
    if as_json:
        emit_json(late)
        return
    t = table("overdue trainings", ["person", "training", "every", "last completed (UTC)", "due"])
    for s in late:
        t.add_row(
            s.person, s.training, s.every, when(s.completed_at), when(s.due_at) if s.due_at else "never done"
        )
    console.print(t)


@training_app.command("completed")
def training_completed(
    person: str = typer.Argument(..., help="A person of the plan."),
    name: str = typer.Argument(..., help="The training."),
    on: str | None = typer.Option(None, "--on", help="When (YYYY-MM-DD); default: now."),
    note: str = NoteOption,
    db: str | None = DbOption,
) -> None:
    """Record that a person completed a training the matrix requires of them."""
    day = _date(on)
    found = _record(
        db,
        lambda s, c: service.completed(
            s,
            c,
            person=person,
            training_name=name,
            completed_on=day,
            note=note,
            actor=actor(),
            now=_now(),
        ),
    )
    console.print(f"{person}: {name} completed; due again {when(found.due_at)} UTC", highlight=False)
