"""``maintd postmortem ...``: read, edit and complete post-mortems; add and finish action items.

Thin: every command is one call into maintd.postmortems in one transaction; a refusal
is a one-line error. As with ``maintd incident``, whoever can open the store may act;
changes are recorded as ``user:<login>``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import typer
import yaml
from pydantic import ValidationError
from rich.text import Text

from maintd.cli.common import DbOption, JsonOption, actor, console, emit_json, fail, open_store, table, when
from maintd.clock import SystemClock
from maintd.postmortems import actions, planned, render, service
from maintd.postmortems.model import (
    EDITABLE,
    ActionStatus,
    PostmortemEdit,
    PostmortemError,
    PostmortemState,
    action_view,
)
from maintd.store.models import PostmortemRow

app = typer.Typer(help="Post-mortems: show, edit, review, complete; action items.", no_args_is_help=True)
action_app = typer.Typer(help="Action items: add, done, cancel, list.", no_args_is_help=True)
app.add_typer(action_app, name="action")

IdArg = typer.Argument(..., help="The incident's id.")
ActionArg = typer.Argument(..., help="The action item's id.")
NoteOption = typer.Option("", "--note", "-n", help="Why, for the timeline.")


@app.command("list")
def list_(
    state: PostmortemState | None = typer.Option(None, help="Only this state."),
    limit: int = typer.Option(50, min=1, max=1000, help="At most this many, newest first."),
    db: str | None = DbOption,
) -> None:
    """Post-mortems, newest first."""
    with open_store(db).read() as session:
        rows = [
            (r.incident_id, r.state, r.severity, r.created_at, r.title)
            for r in service.list_postmortems(session, state=state, limit=limit)
        ]
    t = table("post-mortems", ["incident", "state", "severity", "drafted (UTC)", "title"])
    for incident_id, state_, severity, created_at, title in rows:
        t.add_row(str(incident_id), state_, Text(severity), when(created_at), Text(title))
    console.print(t)


@app.command()
def show(incident_id: int = IdArg, db: str | None = DbOption, as_json: bool = JsonOption) -> None:
    """The post-mortem as Markdown (the blameless template), or as JSON."""
    try:
        with open_store(db).read() as session:
            found = service.get_postmortem(session, incident_id=incident_id)
    except PostmortemError as exc:
        fail(str(exc))
    if as_json:
        emit_json(found)
        return
    typer.echo(render.markdown(found), nl=False)


@app.command()
def create(incident_id: int = IdArg, db: str | None = DbOption) -> None:
    """Draft a post-mortem for a resolved incident without one (P0/P1 get one on resolving)."""
    _do(db, lambda s: service.create(s, incident_id=incident_id, actor=actor(), now=SystemClock().now()))
    console.print(f"post-mortem of incident {incident_id} drafted", highlight=False)


@app.command()
def edit(
    incident_id: int = IdArg,
    assignments: list[str] = typer.Argument(
        None, help="FIELD=VALUE pairs; fields: " + ", ".join(EDITABLE) + "."
    ),
    file: Path | None = typer.Option(None, "--file", "-f", help="A YAML file of FIELD: VALUE to apply."),
    db: str | None = DbOption,
) -> None:
    """Edit sections; times are ISO 8601 (UTC if no offset), an empty value clears one."""
    values: dict[str, Any] = {}
    if file is not None:
        try:
            loaded = yaml.safe_load(file.read_text())
        except (OSError, yaml.YAMLError) as exc:
            fail(f"cannot read {file}: {exc}")
        if not isinstance(loaded, dict):
            fail(f"{file} must be a mapping of FIELD: VALUE")
        values.update(loaded)
    for item in assignments or []:
        name, sep, value = item.partition("=")
        if not sep:
            fail(f"{item!r} is not FIELD=VALUE")
        values[name.strip()] = value.replace("\\n", "\n")
    if not values:
        fail("nothing to change: give FIELD=VALUE pairs or --file")
    try:
        changes = PostmortemEdit.model_validate({k: (v if v != "" else None) for k, v in values.items()})
    except ValidationError as exc:
        fail("; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()))
    _do(
        db,
        lambda s: service.edit(
            s, incident_id=incident_id, changes=changes, actor=actor(), now=SystemClock().now()
        ),
    )
    console.print(
        f"post-mortem of incident {incident_id}: {', '.join(sorted(changes.model_fields_set))} changed",
        highlight=False,
    )


@app.command()
def review(incident_id: int = IdArg, note: str = NoteOption, db: str | None = DbOption) -> None:
    """Ask for a review: draft → in_review."""
    _move(db, incident_id, service.review, note)


@app.command("send-back")
def send_back(incident_id: int = IdArg, note: str = NoteOption, db: str | None = DbOption) -> None:
    """Send back for changes: in_review → draft."""
    _move(db, incident_id, service.send_back, note)


@app.command()
def complete(incident_id: int = IdArg, note: str = NoteOption, db: str | None = DbOption) -> None:
    """Complete a reviewed post-mortem (needs what happened and why); the incident may close then."""
    _move(db, incident_id, service.complete, note)


@action_app.command("add")
def action_add(
    incident_id: int = IdArg,
    title: str = typer.Option(..., "--title", "-t", help="What is to be done."),
    owner: str = typer.Option(..., "--owner", "-o", help="A person of the active plan."),
    due: str = typer.Option(..., "--due", "-d", help="Due date, YYYY-MM-DD: by the end of that day (UTC)."),
    db: str | None = DbOption,
) -> None:
    """Add an action item; its owner is reminded before it is due and while it is overdue."""
    due_on = _date(due)

    def add(session: Any) -> Any:
        return actions.add_action(
            session,
            incident_id=incident_id,
            title=title,
            owner=owner,
            due_on=due_on,
            people=set(planned.stored_people(session)),
            settings=planned.stored_settings(session),
            actor=actor(),
            now=SystemClock().now(),
        )

    row = _do(db, add)
    console.print(f"action {row.id} added: {owner}, due {due_on.isoformat()}", highlight=False)


@action_app.command("done")
def action_done(action_id: int = ActionArg, db: str | None = DbOption) -> None:
    """Mark an action item done (on time when done by the end of its due day, UTC)."""
    row = _finish(db, action_id, ActionStatus.done)
    console.print(f"action {action_id} done {'on time' if row.on_time else 'late'}", highlight=False)


@action_app.command("cancel")
def action_cancel(action_id: int = ActionArg, db: str | None = DbOption) -> None:
    """Cancel an action item: no more reminders."""
    _finish(db, action_id, ActionStatus.cancelled)
    console.print(f"action {action_id} cancelled", highlight=False)


@action_app.command("list")
def action_list(
    status: ActionStatus | None = typer.Option(None, help="Only this status."),
    owner: str | None = typer.Option(None, help="Only this owner's."),
    incident: int | None = typer.Option(None, help="Only this incident's."),
    db: str | None = DbOption,
    as_json: bool = JsonOption,
) -> None:
    """Action items, earliest due first."""
    with open_store(db).read() as session:
        found = [
            action_view(r)
            for r in actions.list_actions(session, status=status, owner=owner, incident_id=incident)
        ]
    if as_json:
        emit_json(found)
        return
    t = table("action items", ["id", "incident", "owner", "due", "status", "done (UTC)", "title"])
    for a in found:
        done = when(a.completed_at) + ("" if a.on_time is None else " on time" if a.on_time else " late")
        t.add_row(str(a.id), str(a.incident_id), a.owner, a.due_on.isoformat(), a.status, done, Text(a.title))
    console.print(t)


def _do(db: str | None, work: Callable[[Any], Any]) -> Any:
    try:
        with open_store(db).write() as session:
            return work(session)
    except PostmortemError as exc:
        fail(str(exc))


def _move(db: str | None, incident_id: int, move: Callable[..., PostmortemRow], note: str) -> None:
    row = _do(
        db, lambda s: move(s, incident_id=incident_id, actor=actor(), now=SystemClock().now(), note=note)
    )
    console.print(f"post-mortem of incident {incident_id} is {row.state}", highlight=False)


def _finish(db: str | None, action_id: int, status: ActionStatus) -> Any:
    def finish(session: Any) -> Any:
        return actions.update_action(
            session,
            action_id=action_id,
            people=(),
            settings=planned.stored_settings(session),
            actor=actor(),
            now=SystemClock().now(),
            status=status,
        )

    return _do(db, finish)


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        fail(f"{text!r} is not a date: write YYYY-MM-DD")
