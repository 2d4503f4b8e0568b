"""``maintd tasks``, ``maintd runs``, ``maintd events``: what the engine did, from the store."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import typer

from maintd import views
from maintd.cli.common import (
    DbOption,
    JsonOption,
    console,
    emit_json,
    fail,
    open_store,
    status_text,
    table,
    when,
)
from maintd.store import events as event_log


def tasks(db: str | None = DbOption, as_json: bool = JsonOption) -> None:
    """Tasks of the active plan: next due time and last status per target."""
    store = open_store(db)
    with store.read() as session:
        found = views.tasks(session)
        planned = views.active_plan(session) is not None
    if as_json:
        emit_json(found)
        return
    empty = "none" if planned else f"no plan is active in {store.describe()} yet: maintd serve loads one"
    t = table("tasks", ["task", "kind", "target", "next due (UTC)", "last", "running", "schedule"], empty)
    for task in found:
        schedule = _schedule_text(task.schedule)
        states: list[views.TargetState | None] = [*task.targets] or [None]
        for state in states:
            t.add_row(
                task.name,
                task.kind,
                state.target if state else "-",
                when(state.next_due) if state else "-",
                status_text(state.last_status) if state else "-",
                "yes" if state and state.running_run_id else "",
                schedule,
            )
    console.print(t)


def runs(
    task: str | None = typer.Option(None, help="Only this task."),
    target: str | None = typer.Option(None, help="Only this target."),
    status: str | None = typer.Option(None, help="ok, warning, critical, unknown or running."),
    since: datetime | None = typer.Option(None, help="Started at or after (ISO 8601, UTC if no offset)."),
    limit: int = typer.Option(50, min=1, max=views.MAX_LIMIT, help="At most this many, newest first."),
    db: str | None = DbOption,
    as_json: bool = JsonOption,
) -> None:
    """Recorded runs, newest first."""
    if status is not None and status not in views.RUN_STATUSES:
        fail(f"--status: {status!r} is not one of {', '.join(views.RUN_STATUSES)}", 2)
    store = open_store(db)
    with store.read() as session:
        found = views.runs(session, task=task, target=target, status=status, since=_aware(since), limit=limit)
    if as_json:
        emit_json(found)
        return
    t = table("runs", ["started (UTC)", "task", "target", "status", "took", "trigger", "output"])
    for run in found:
        shown = "running" if run.state == "running" else run.status
        took = f"{run.duration_ms / 1000:.2f}s" if run.duration_ms is not None else "-"
        flags = (
            [run.trigger]
            + (["dry-run"] if run.dry_run else [])
            + ([run.stop_reason] if run.stop_reason else [])
        )
        if not run.in_window:
            flags.append("outside window")
        t.add_row(
            when(run.started_at),
            run.task,
            run.target,
            status_text(shown),
            took,
            ", ".join(flags),
            run.output.splitlines()[0][:100] if run.output else "",
        )
    console.print(t)


def events(
    kind: str | None = typer.Option(None, help="Exact kind, or a prefix like 'run.'"),
    subject: str | None = typer.Option(None, help="e.g. task:backup/db1"),
    limit: int = typer.Option(50, min=1, max=views.MAX_LIMIT, help="How many recent events to show first."),
    follow: bool = typer.Option(False, "--follow", "-f", help="Keep printing new events as they happen."),
    db: str | None = DbOption,
    as_json: bool = JsonOption,
) -> None:
    """The event log: every state change, oldest first (the most recent LIMIT)."""
    store = open_store(db)
    with store.read() as session:
        rows = list(
            reversed(event_log.query(session, kind=kind, subject=subject, limit=limit, newest_first=True))
        )
        found = [views.event_view(r) for r in rows]
    last = found[-1].id if found else 0
    _print_events(found, as_json, header=True)
    while follow:
        time.sleep(1.0)  # polling the store: the event log is a table, not a stream
        with store.read() as session:
            new = [
                views.event_view(r)
                for r in event_log.query(session, after_id=last, kind=kind, subject=subject)
            ]
        if new:
            last = new[-1].id
            _print_events(new, as_json, header=False)


def _print_events(found: list[views.EventView], as_json: bool, *, header: bool) -> None:
    if as_json:
        emit_json(found)
        return
    if header:
        t = table("events", ["id", "at (UTC)", "kind", "subject", "actor", "details"])
        for e in found:
            t.add_row(str(e.id), when(e.at), e.kind, e.subject, e.actor, _details(e.payload))
        console.print(t)
        return
    for e in found:
        console.print(
            f"{e.id:>6}  {when(e.at)}  {e.kind:<16} {e.subject}  {e.actor}  {_details(e.payload)}",
            highlight=False,
            soft_wrap=True,
        )


def _details(payload: dict[str, object]) -> str:
    shown = {k: v for k, v in payload.items() if k not in ("digest", "output") and v not in (None, [], "")}
    if isinstance(shown.get("run_id"), str):
        shown["run_id"] = str(shown["run_id"])[:8]
    return ", ".join(f"{k}={v}" for k, v in shown.items())[:160]


def _schedule_text(schedule: dict[str, object]) -> str:
    for key in ("cadence", "cron", "every"):
        if key in schedule:
            text = f"{key} {schedule[key]}"
            if schedule.get("window"):
                text += f" in {schedule['window']}"
            return text
    return "-"


def _aware(value: datetime | None) -> datetime | None:
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value
