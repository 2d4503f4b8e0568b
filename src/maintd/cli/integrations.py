"""``maintd integration``: where alerts come in from, and the keys their senders use."""

from __future__ import annotations

import typer

from maintd.alerts.integrations import (
    IntegrationError,
    IntegrationKind,
    create_integration,
    disable_integration,
    list_integrations,
)
from maintd.cli.common import DbOption, JsonOption, actor, console, emit_json, fail, open_store, table, when
from maintd.clock import SystemClock

app = typer.Typer(
    help="Alert integrations: a key for Alertmanager, PagerDuty-style senders or maintd's own JSON.",
    no_args_is_help=True,
)


@app.command("create")
def create(
    name: str = typer.Option(..., help="What sends through it, e.g. prometheus-prod."),
    kind: IntegrationKind = typer.Option(
        ...,
        help="native: POST /api/v1/alerts; alertmanager: POST /integrations/alertmanager/KEY; "
        "pagerduty: POST /v2/enqueue with the key as routing_key.",
    ),
    db: str | None = DbOption,
) -> None:
    """Create an integration and print its key once; only its hash is stored."""
    store = open_store(db)
    try:
        with store.write() as session:
            key = create_integration(session, name=name, kind=kind, now=SystemClock().now(), actor=actor())
    except IntegrationError as exc:
        fail(str(exc))
    typer.echo(key)


@app.command("list")
def list_(db: str | None = DbOption, as_json: bool = JsonOption) -> None:
    """Integrations by name and kind (never their keys)."""
    store = open_store(db)
    with store.read() as session:
        rows = list_integrations(session)
    if as_json:
        for r in rows:
            emit_json(
                {"name": r.name, "kind": r.kind, "created_at": r.created_at, "disabled_at": r.disabled_at}
            )
        return
    t = table("integrations", ["name", "kind", "created", "disabled"])
    for r in rows:
        t.add_row(r.name, r.kind, when(r.created_at), when(r.disabled_at))
    console.print(t)


@app.command("disable")
def disable(
    name: str = typer.Argument(..., help="The integration's name."), db: str | None = DbOption
) -> None:
    """Disable an integration: its key is refused from now on; its alerts stay."""
    store = open_store(db)
    try:
        with store.write() as session:
            disable_integration(session, name=name, now=SystemClock().now(), actor=actor())
    except IntegrationError as exc:
        fail(str(exc))
    console.print(f"integration {name!r} disabled", highlight=False)
