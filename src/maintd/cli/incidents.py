"""``maintd incident ...`` and ``maintd alerts``: incidents and their alerts, from the store.

Whoever can open the store can change it (as with ``maintd token``), so there
are no roles here; every change is recorded as ``user:<login>``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TypeVar

import typer
from rich.markup import escape
from rich.table import Table
from rich.text import Text
from sqlalchemy.orm import Session

from maintd import views
from maintd.cli.common import DbOption, JsonOption, actor, console, emit_json, fail, open_store, table, when
from maintd.clock import SystemClock
from maintd.incidents import service
from maintd.incidents.states import IncidentError, State
from maintd.plan.incidents import Priority
from maintd.store.models import IncidentRow

T = TypeVar("T")

app = typer.Typer(help="Incidents: list, show, acknowledge, resolve, close, assign.", no_args_is_help=True)

IdArg = typer.Argument(..., help="The incident's id.")
NoteOption = typer.Option("", "--note", "-n", help="Why, for the timeline.")

PRIORITY_STYLE = {"P0": "bold white on red", "P1": "bold red", "P2": "yellow", "P3": "cyan"}
STATE_STYLE = {
    "triggered": "bold red",
    "acknowledged": "yellow",
    "mitigated": "cyan",
    "resolved": "green",
    "closed": "dim",
}


@app.command("list")
def list_(
    state: str = typer.Option("open", help="open, all, or one state: " + ", ".join(s.value for s in State)),
    priority: Priority | None = typer.Option(None, help="Only this priority."),
    since: datetime | None = typer.Option(None, help="Opened at or after (ISO 8601, UTC if no offset)."),
    limit: int = typer.Option(50, min=1, max=views.MAX_LIMIT, help="At most this many, newest first."),
    db: str | None = DbOption,
    as_json: bool = JsonOption,
) -> None:
    """Incidents, newest first (open ones unless --state says otherwise)."""
    if state != "all" and state not in service.STATE_FILTERS:
        fail(f"unknown state {state!r}: use all, {', '.join(service.STATE_FILTERS)}")
    store = open_store(db)
    with store.read() as session:
        rows = service.list_incidents(
            session,
            state=None if state == "all" else state,
            priority=priority,
            since=_aware(since),
            limit=limit,
        )
        found = [views.incident_view(r) for r in rows]
    if as_json:
        emit_json(found)
        return
    now = SystemClock().now()
    t = table("incidents", ["id", "priority", "state", "opened (UTC)", "deadline", "assignee", "title"])
    for i in found:
        t.add_row(
            str(i.id),
            _priority(i.priority),
            _state(i.state),
            when(i.opened_at),
            deadline_text(i, now),
            Text(i.assignee or "-"),
            Text(i.title),
        )
    console.print(t)


@app.command()
def show(incident_id: int = IdArg, db: str | None = DbOption, as_json: bool = JsonOption) -> None:
    """One incident: its deadline, its alerts and its timeline."""
    store = open_store(db)
    try:
        with store.read() as session:
            found = service.get_incident(session, incident_id=incident_id)
            detail = views.incident_detail(found.incident, found.alerts, found.timeline, found.steps)
    except IncidentError as exc:
        fail(str(exc))
    if as_json:
        emit_json(detail)
        return
    now = SystemClock().now()
    header = Text.from_markup(
        f"[bold]incident {detail.id}[/]  {_priority(detail.priority)}  {_state(detail.state)}  ",
    )
    header.append(detail.title)
    console.print(header)
    facts = [
        f"opened {when(detail.opened_at)} UTC",
        f"deadline {when(detail.ack_deadline)} ({deadline_text(detail, now)})",
        f"assignee {escape(detail.assignee or '-')}",
    ]
    if detail.postmortem_required:
        facts.append("post-mortem required")
    console.print("   ".join(facts), highlight=False)
    if detail.labels:
        console.print(", ".join(f"{k}={v}" for k, v in detail.labels.items()), highlight=False, markup=False)
    alerts = table("alerts", ["id", "status", "priority", "severity", "started (UTC)", "received", "summary"])
    for a in detail.alerts:
        alerts.add_row(
            str(a.id), a.status, a.priority, a.severity, when(a.starts_at), str(a.received), Text(a.summary)
        )
    console.print(alerts)
    if detail.escalation is not None:
        console.print(_escalation(detail.escalation))
    timeline = table("timeline", ["at (UTC)", "kind", "subject", "actor", "details"])
    for e in detail.timeline:
        timeline.add_row(when(e.at), e.kind, e.subject, Text(e.actor), Text(_details(e.payload)))
    console.print(timeline)


@app.command("ack")
def ack(incident_id: int = IdArg, note: str = NoteOption, db: str | None = DbOption) -> None:
    """Acknowledge: you are on it (this meets the response deadline)."""
    _change(db, incident_id, service.acknowledge, note)


@app.command()
def mitigate(incident_id: int = IdArg, note: str = NoteOption, db: str | None = DbOption) -> None:
    """Mark mitigated: the impact is contained, the cause may remain."""
    _change(db, incident_id, service.mitigate, note)


@app.command()
def resolve(incident_id: int = IdArg, note: str = NoteOption, db: str | None = DbOption) -> None:
    """Resolve the incident."""
    _change(db, incident_id, service.resolve, note)


@app.command()
def reopen(incident_id: int = IdArg, note: str = NoteOption, db: str | None = DbOption) -> None:
    """Back to triggered, with a fresh response deadline."""
    _change(db, incident_id, service.reopen, note)


@app.command()
def close(
    incident_id: int = IdArg,
    waive_postmortem: bool = typer.Option(
        False, "--waive-postmortem", help="Close a P0/P1 without its post-mortem (say why in --note)."
    ),
    note: str = NoteOption,
    db: str | None = DbOption,
) -> None:
    """Close a resolved incident; P0/P1 need their post-mortem first, or --waive-postmortem."""
    _change(db, incident_id, functools.partial(service.close, waive_postmortem=waive_postmortem), note)


@app.command()
def assign(
    incident_id: int = IdArg,
    person: str = typer.Argument(..., help="Who owns it now."),
    note: str = NoteOption,
    db: str | None = DbOption,
) -> None:
    """Assign the incident to PERSON."""
    row = _write(
        db,
        lambda session: service.assign(
            session,
            incident_id=incident_id,
            assignee=person,
            actor=actor(),
            now=SystemClock().now(),
            note=note,
        ),
    )
    console.print(f"incident {incident_id} assigned to {row.assignee}", highlight=False)


@app.command()
def note(
    incident_id: int = IdArg,
    text: str = typer.Argument(..., help="The note."),
    db: str | None = DbOption,
) -> None:
    """Add a note to the incident's timeline."""
    _write(
        db,
        lambda session: service.add_note(
            session, incident_id=incident_id, note=text, actor=actor(), now=SystemClock().now()
        ),
    )
    console.print(f"note added to incident {incident_id}", highlight=False)


@app.command("priority")
def priority_(
    incident_id: int = IdArg,
    priority: Priority = typer.Argument(..., help="P0, P1, P2 or P3."),
    note: str = NoteOption,
    db: str | None = DbOption,
) -> None:
    """Change the priority; an unacknowledged incident's deadline moves with it."""
    row = _write(
        db,
        lambda session: service.change_priority(
            session,
            incident_id=incident_id,
            priority=priority,
            actor=actor(),
            now=SystemClock().now(),
            settings=service.stored_settings(session),
            note=note,
        ),
    )
    console.print(
        f"incident {incident_id} is {priority} now (deadline {when(row.ack_deadline)} UTC)", highlight=False
    )


def alerts(
    status: str | None = typer.Option(None, help="firing or resolved."),
    incident: int | None = typer.Option(None, help="Only the alerts of this incident."),
    fingerprint: str | None = typer.Option(None, help="Only this fingerprint (16 hex digits)."),
    limit: int = typer.Option(50, min=1, max=views.MAX_LIMIT, help="At most this many, newest first."),
    db: str | None = DbOption,
    as_json: bool = JsonOption,
) -> None:
    """Alerts, newest first: what fired, where it went (incident or silence)."""
    if status not in (None, "firing", "resolved"):
        fail(f"unknown status {status!r}: use firing or resolved")
    store = open_store(db)
    with store.read() as session:
        found = views.alerts(session, status=status, incident=incident, fingerprint=fingerprint, limit=limit)
    if as_json:
        emit_json(found)
        return
    t = table(
        "alerts",
        ["id", "status", "priority", "severity", "started (UTC)", "incident", "source", "summary"],
    )
    for a in found:
        where = str(a.incident_id) if a.incident_id is not None else (a.muted_by or "-")
        t.add_row(
            str(a.id), a.status, a.priority, a.severity, when(a.starts_at), where, a.source, Text(a.summary)
        )
    console.print(t)


def deadline_text(incident: views.IncidentView, now: datetime) -> str:
    """The response deadline in words: time left, overdue, breached, met or missed."""
    if incident.state == State.triggered.value:
        if incident.breached_at is not None:
            return f"[bold red]breached {_span(now - incident.ack_deadline)} ago[/]"
        left = incident.ack_deadline - now
        if left <= timedelta(0):
            return f"[bold red]overdue {_span(-left)}[/]"
        return f"[yellow]{_span(left)} left[/]" if left < timedelta(minutes=5) else f"{_span(left)} left"
    return "[red]missed[/]" if incident.breached_at is not None else "met"


def _change(db: str | None, incident_id: int, action: Callable[..., IncidentRow], note: str) -> None:
    row = _write(
        db,
        lambda session: action(
            session,
            incident_id=incident_id,
            actor=actor(),
            now=SystemClock().now(),
            settings=service.stored_settings(session),
            note=note,
        ),
    )
    console.print(f"incident {incident_id} is {_state(row.state)}", highlight=False)


def _write(db: str | None, work: Callable[[Session], T]) -> T:
    """``work`` in one write transaction; an incident refusing it is a one-line error."""
    store = open_store(db)
    try:
        with store.write() as session:
            return work(session)
    except IncidentError as exc:
        fail(str(exc))


def _span(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    if days:
        return f"{days}d{hours:02d}h"
    if hours:
        return f"{hours}h{minutes:02d}m"
    if minutes:
        return f"{minutes}m"
    return f"{seconds}s"


def _priority(value: str) -> str:
    return f"[{PRIORITY_STYLE.get(value, 'white')}]{value}[/]"


def _state(value: str) -> str:
    return f"[{STATE_STYLE.get(value, 'white')}]{value}[/]"


def _escalation(escalation: views.EscalationView) -> Table:
    """The policy's levels as the incident keeps them, and each step's fate."""
    who = {i + 1: ", ".join(level["notify"]) for i, level in enumerate(escalation.levels)}
    title = f"escalation: {escalation.policy}" + (
        f" (repeat {escalation.repeat})" if escalation.repeat else ""
    )
    steps = table(title, ["step", "level", "notify", "due (UTC)", "state", "at (UTC)"])
    for s in escalation.steps:
        steps.add_row(
            s.step,
            str(s.level),
            Text(who.get(s.level, "?")),
            when(s.due_at),
            s.state,
            when(s.fired_at or s.cancelled_at),
        )
    return steps


def _details(payload: dict[str, object]) -> str:
    shown = {k: v for k, v in payload.items() if v not in (None, [], "", {})}
    return ", ".join(f"{k}={v}" for k, v in shown.items())[:200]


def _aware(value: datetime | None) -> datetime | None:
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value
