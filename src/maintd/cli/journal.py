"""``maintd journal list|show|retry|drop``: the rows ``maintd intake`` journaled, and the failed
ones the drain skips (docs/alerts.md, "The intake's journal and its drain")."""

from __future__ import annotations

import contextlib
import json

import typer
from rich.text import Text

from maintd.cli.common import DbOption, JsonOption, actor, console, emit_json, fail, open_store, table, when
from maintd.clock import SystemClock
from maintd.intake import rows_admin
from maintd.store.intake_tables import AlertIntakeRow

app = typer.Typer(
    help="The alert intake's journal: rows waiting for the drain, and failed rows it skips.",
    no_args_is_help=True,
)
IdsArgument = typer.Argument(None, help="Row ids (see maintd journal list --failed).")
AllFailedOption = typer.Option(False, "--all-failed", help="Every failed row.")
DryRunOption = typer.Option(False, "--dry-run", help="Say what would change, change nothing.")


@app.command("list")
def list_(
    failed: bool = typer.Option(False, "--failed", help="Only failed rows (skipped by the drain)."),
    limit: int = typer.Option(50, min=1, max=10_000, help="At most this many, oldest first."),
    db: str | None = DbOption,
    as_json: bool = JsonOption,
) -> None:
    """Journal rows, oldest first: waiting for the drain, or failed and skipped."""
    store = open_store(db)
    with store.read() as session:
        rows = rows_admin.journal_rows(session, failed_only=failed, limit=limit)
        counted = rows_admin.counts(session)
    if as_json:
        for row in rows:
            emit_json(rows_admin.describe(row))
        return
    t = table(
        f"alert intake journal: {counted['waiting']} waiting, {counted['failed']} failed",
        ["id", "received (UTC)", "source", "sender", "bytes", "attempts", "error"],
    )
    for row in rows:
        error = Text(row.error, "red") if row.error else Text("waiting", "cyan")
        t.add_row(
            str(row.id), when(row.received_at), row.source, Text(row.actor), str(len(row.body)),
            str(row.attempts), error,
        )  # fmt: skip
    console.print(t)


@app.command()
def show(
    row_id: int = typer.Argument(..., help="The row's id."),
    db: str | None = DbOption,
    as_json: bool = JsonOption,
) -> None:
    """One row: who sent it, when, its error, and its body as received."""
    store = open_store(db)
    with store.read() as session:
        row = session.get(AlertIntakeRow, row_id)
    if row is None:
        fail(f"no journal row {row_id} (drained, dropped, or never there)")
    body = row.body.decode("utf-8", "replace")
    if as_json:
        emit_json({**rows_admin.describe(row), "body": body})
        return
    console.print(json.dumps(rows_admin.describe(row), indent=2), highlight=False, markup=False)
    with contextlib.suppress(ValueError):  # not JSON (it failed for a reason): as received
        body = json.dumps(json.loads(row.body), indent=2)
    console.print(body, highlight=False, markup=False)


@app.command()
def retry(
    ids: list[int] | None = IdsArgument,
    all_failed: bool = AllFailedOption,
    dry_run: bool = DryRunOption,
    db: str | None = DbOption,
) -> None:
    """Let the drain try failed rows again (their error cleared; audited as intake.retried)."""
    _act("retry", ids, all_failed, dry_run, db)


@app.command()
def drop(
    ids: list[int] | None = IdsArgument,
    all_failed: bool = AllFailedOption,
    dry_run: bool = DryRunOption,
    db: str | None = DbOption,
) -> None:
    """Delete failed rows for good; each body is kept in its intake.dropped audit event."""
    _act("drop", ids, all_failed, dry_run, db)


def _act(what: str, ids: list[int] | None, all_failed: bool, dry_run: bool, db: str | None) -> None:
    if bool(ids) == all_failed:
        fail("name the rows, or give --all-failed (not both)")
    store = open_store(db)
    with store.write() as session:
        rows, problems = rows_admin.failed_rows(session, None if all_failed else ids)
        if problems:
            fail("; ".join(problems))
        if not dry_run:
            change = rows_admin.retry if what == "retry" else rows_admin.drop
            change(session, rows, actor=actor(), now=SystemClock().now())
    verb = {"retry": "retried", "drop": "dropped"}[what]
    said = f"would be {verb}" if dry_run else verb
    listed = ", ".join(str(row.id) for row in rows) or "none"
    console.print(f"{len(rows)} failed row(s) {said}: {listed}", highlight=False)
