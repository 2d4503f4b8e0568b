"""``maintd db`` and ``maintd token``: schema migrations and API tokens."""

from __future__ import annotations

import typer

from maintd.auth import Role, TokenError, create_token, list_tokens, revoke_token
from maintd.cli.common import DbOption, JsonOption, actor, console, emit_json, fail, open_store, table, when
from maintd.clock import SystemClock

db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
token_app = typer.Typer(help="API tokens (every /api/v1 route needs one).", no_args_is_help=True)


@db_app.command()
def upgrade(db: str | None = DbOption) -> None:
    """Apply schema migrations (maintd serve does this on start too)."""
    store = open_store(db)
    console.print(f"database {store.describe()} at revision {store.current_revision()}", highlight=False)


@token_app.command("create")
def token_create(
    name: str = typer.Option(..., help="Who or what uses it, e.g. alice or grafana."),
    role: Role = typer.Option(Role.viewer, help="What it may do; each role includes the ones before it."),
    db: str | None = DbOption,
) -> None:
    """Create a token and print it once; only its hash is stored."""
    store = open_store(db)
    try:
        with store.write() as session:
            token = create_token(session, name=name, role=role, now=SystemClock().now(), actor=actor())
    except TokenError as exc:
        fail(str(exc))
    typer.echo(token)


@token_app.command("list")
def token_list(db: str | None = DbOption, as_json: bool = JsonOption) -> None:
    """Tokens by name and role (never their values)."""
    store = open_store(db)
    with store.read() as session:
        rows = list_tokens(session)
    if as_json:
        for r in rows:
            emit_json(
                {
                    "name": r.name,
                    "role": r.role,
                    "created_at": r.created_at,
                    "last_used_at": r.last_used_at,
                    "revoked_at": r.revoked_at,
                }
            )
        return
    t = table("tokens", ["name", "role", "created", "last used", "revoked"])
    for r in rows:
        t.add_row(r.name, r.role, when(r.created_at), when(r.last_used_at), when(r.revoked_at))
    console.print(t)


@token_app.command("revoke")
def token_revoke(
    name: str = typer.Argument(..., help="The token's name."), db: str | None = DbOption
) -> None:
    """Revoke a token; requests with it are refused from now on."""
    store = open_store(db)
    try:
        with store.write() as session:
            revoke_token(session, name=name, now=SystemClock().now(), actor=actor())
    except TokenError as exc:
        fail(str(exc))
    console.print(f"token {name!r} revoked", highlight=False)
