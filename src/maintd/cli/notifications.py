"""``maintd notifications ...``: the notification log, read from the store."""

from __future__ import annotations

import typer
from rich.text import Text

from maintd.cli.common import DbOption, JsonOption, console, emit_json, fail, open_store, table, when
from maintd.clock import SystemClock
from maintd.notify import log
from maintd.notify.dispatcher import Dispatcher
from maintd.notify.transport import AppriseNotifier

app = typer.Typer(
    help="The notification log: who was paged, on which channel, how it went.", no_args_is_help=True
)

STATUS_STYLE = {"pending": "yellow", "sent": "green", "failed": "bold red", "cancelled": "dim"}


def _status(status: str) -> Text:
    return Text(status, style=STATUS_STYLE.get(status, ""))


@app.command("list")
def list_(
    incident: int | None = typer.Option(None, help="Only this incident's notifications."),
    status: str | None = typer.Option(None, help="Only this status: " + ", ".join(log.STATUSES) + "."),
    limit: int = typer.Option(50, min=1, max=log.MAX_LIMIT, help="At most this many, newest first."),
    db: str | None = DbOption,
    as_json: bool = JsonOption,
) -> None:
    """Notifications, newest first."""
    if status is not None and status not in log.STATUSES:
        fail(f"unknown status {status!r}: use {', '.join(log.STATUSES)}")
    store = open_store(db)
    with store.read() as session:
        found = log.list_notifications(session, incident_id=incident, status=status, limit=limit)
    if as_json:
        emit_json(found)
        return
    columns = ["id", "incident", "recipient", "state", "step", "status", "channel", "attempts", "last error"]
    t = table("notifications", columns)
    for n in found:
        t.add_row(
            str(n.id),
            str(n.incident_id) if n.incident_id is not None else "-",
            Text(n.recipient),
            n.state,
            Text(n.step),
            _status(n.status),
            str(n.channel),
            str(n.attempts),
            Text(n.last_error or "-"),
        )
    console.print(t)


@app.command()
def show(
    notification_id: int = typer.Argument(..., help="The notification's id."),
    db: str | None = DbOption,
    as_json: bool = JsonOption,
) -> None:
    """One notification: its message, its channels and every delivery attempt."""
    store = open_store(db)
    with store.read() as session:
        found = log.get_notification(session, notification_id=notification_id)
    if found is None:
        fail(f"no notification {notification_id}")
    if as_json:
        emit_json(found)
        return
    header = Text(f"notification {found.id}  ", style="bold")
    header.append_text(_status(found.status))
    header.append(f"  {found.title}", style="")
    console.print(header)
    facts = [
        f"{found.recipient}",
        f"{found.subject} {found.state}/{found.step}",
        f"queued {when(found.created_at)} UTC",
        f"due {when(found.due_at)} UTC",
        f"sent {when(found.sent_at)} UTC" if found.sent_at else "not sent",
    ]
    console.print("   ".join(facts), highlight=False, markup=False)
    if found.last_error:
        console.print(Text(f"last error: {found.last_error}", style="red"))
    channels = table("channels", ["#", "in use", "after", "url"])
    for i, c in enumerate(found.channels):
        channels.add_row(str(i), "*" if i == found.channel else "", c.after or "-", Text(c.url))
    console.print(channels)
    attempts = table("attempts", ["at (UTC)", "channel", "ms", "result", "target", "error"])
    for a in found.history:
        result = Text("ok", "green") if a.ok else Text("permanent" if a.permanent else "transient", "red")
        attempts.add_row(
            when(a.at), str(a.channel), f"{a.duration_ms:.0f}", result, Text(a.target), Text(a.error or "-")
        )
    console.print(attempts)


@app.command()
def deliver(db: str | None = DbOption) -> None:
    """Send what is due now, once, as a running server would (for a store no server delivers from)."""
    store = open_store(db)
    dispatcher = Dispatcher(store, SystemClock(), AppriseNotifier(), owner="cli")
    attempts = dispatcher.deliver_due()
    console.print(f"{attempts} delivery attempt(s); see maintd notifications list", highlight=False)
