"""``maintd remediation ...``: what playbooks decided and did; approve, deny, reset a breaker.

Thin: each command is one call into maintd.remediation.service in one transaction; a
refusal is a one-line error. Whoever can open the store may act; it is recorded as
``user:<login>``. An approved execution runs at the engine's next pass.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import typer
from rich.text import Text

from maintd.cli.common import DbOption, JsonOption, actor, console, emit_json, fail, open_store, table, when
from maintd.clock import SystemClock
from maintd.remediation import service
from maintd.remediation.guardrails import State

app = typer.Typer(help="Remediations: list, show, approve, deny; playbook breakers.", no_args_is_help=True)
breaker_app = typer.Typer(help="Playbook circuit breakers: list, reset.", no_args_is_help=True)
app.add_typer(breaker_app, name="breaker")

IdArg = typer.Argument(..., help="The remediation's id.")
NoteOption = typer.Option("", "--note", "-n", help="Why, for the timeline.")


@app.command("list")
def list_(
    state: State | None = typer.Option(None, help="Only this state."),
    playbook: str | None = typer.Option(None, help="Only this playbook."),
    incident: int | None = typer.Option(None, help="Only this incident's."),
    limit: int = typer.Option(50, min=1, max=1000, help="At most this many, newest first."),
    db: str | None = DbOption,
    as_json: bool = JsonOption,
) -> None:
    """Remediations, newest first: what each playbook decided, and how its executions went."""
    with open_store(db).read() as session:
        found = [
            service.view(r)
            for r in service.list_remediations(
                session, state=state, playbook=playbook, incident_id=incident, limit=limit
            )
        ]
    if as_json:
        emit_json(found)
        return
    t = table("remediations", ["id", "incident", "playbook", "action", "target", "state", "at (UTC)", "why"])
    for r in found:
        why = r.output.splitlines()[0] if r.outcome and r.output else r.reason
        t.add_row(
            str(r.id),
            str(r.incident_id or "-"),
            r.playbook,
            r.action,
            Text(r.target),
            r.state,
            when(r.created_at),
            Text(why),
        )
    console.print(t)


@app.command()
def show(remediation_id: int = IdArg, db: str | None = DbOption) -> None:
    """One remediation as JSON: the decision, the output, the changes, the verification."""
    try:
        with open_store(db).read() as session:
            found = service.view(service.get(session, remediation_id=remediation_id))
    except service.RemediationError as exc:
        fail(str(exc))
    emit_json(found)


@app.command()
def approve(remediation_id: int = IdArg, note: str = NoteOption, db: str | None = DbOption) -> None:
    """Approve an execution waiting for approval: the engine runs it at its next pass."""
    row = _do(
        db,
        lambda s: service.approve(
            s, remediation_id=remediation_id, actor=actor(), now=SystemClock().now(), note=note
        ),
    )
    console.print(f"remediation {remediation_id} approved: {row['state']}", highlight=False)


@app.command()
def deny(remediation_id: int = IdArg, note: str = NoteOption, db: str | None = DbOption) -> None:
    """Deny an execution waiting for approval; the incident's escalation goes on."""
    row = _do(
        db,
        lambda s: service.deny(
            s, remediation_id=remediation_id, actor=actor(), now=SystemClock().now(), note=note
        ),
    )
    console.print(f"remediation {remediation_id} {row['state']}", highlight=False)


@breaker_app.command("list")
def breaker_list(db: str | None = DbOption) -> None:
    """Each playbook's failures in a row, and whether its breaker is open."""
    with open_store(db).read() as session:
        found = [
            service.BreakerView.model_validate(b, from_attributes=True) for b in service.breakers(session)
        ]
    t = table("playbook breakers", ["playbook", "failures in a row", "open since (UTC)"])
    for b in found:
        t.add_row(b.playbook, str(b.failures), when(b.opened_at))
    console.print(t)


@breaker_app.command("reset")
def breaker_reset(
    playbook: str = typer.Argument(..., help="The playbook's name."), db: str | None = DbOption
) -> None:
    """Close a playbook's breaker: it may act again."""
    _do(db, lambda s: service.reset_breaker(s, playbook=playbook, actor=actor(), now=SystemClock().now()))
    console.print(f"breaker of playbook {playbook} reset", highlight=False)


def _do(db: str | None, work: Callable[[Any], Any]) -> dict[str, Any]:
    try:
        with open_store(db).write() as session:
            row = work(session)
            return {"state": getattr(row, "state", None)}
    except service.RemediationError as exc:
        fail(str(exc))
