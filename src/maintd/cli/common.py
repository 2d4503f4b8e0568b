"""What every command shares: settings, the store, tables, JSON output, one-line errors."""

from __future__ import annotations

import getpass
import json
import sys
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any, NoReturn

import typer
from pydantic import BaseModel
from rich import box
from rich.console import Console, ConsoleOptions, RenderableType, RenderResult
from rich.table import Table
from rich.text import Text

from maintd.settings import Settings
from maintd.store.db import Store, StoreError
from maintd.store.outage import unusable

# Piped output is for people reading logs or files, not an 80-column terminal: keep rows on one line.
console = Console(width=None if sys.stdout.isatty() else 200)
err_console = Console(stderr=True, width=None if sys.stderr.isatty() else 200)

STATUS_STYLE = {
    "ok": "green",
    "warning": "yellow",
    "critical": "bold red",
    "unknown": "magenta",
    "running": "cyan",
}

DbOption = typer.Option(
    None,
    "--db",
    envvar="MAINTD_DATABASE_URL",
    help="Database URL (default: SQLite in ~/.local/state/maintd).",
)
JsonOption = typer.Option(False, "--json", help="Print JSON (one object per line for lists) for scripts.")


def error(message: str) -> None:
    err_console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)


def fail(message: str, code: int = 1) -> NoReturn:
    error(message)
    raise typer.Exit(code)


def open_store(db: str | None) -> Store:
    settings = Settings.from_env(database_url=db)
    try:
        store = Store(settings.database_url)
    except StoreError as exc:
        fail(str(exc))
    try:
        store.upgrade()
    except Exception as exc:
        fail(unusable(store.describe(), exc))
    return store


def emit_json(items: BaseModel | Iterable[BaseModel] | dict[str, Any]) -> None:
    if isinstance(items, BaseModel):
        sys.stdout.write(items.model_dump_json() + "\n")
    elif isinstance(items, dict):
        sys.stdout.write(json.dumps(items, default=str) + "\n")
    else:
        for item in items:
            sys.stdout.write(item.model_dump_json() + "\n")
    sys.stdout.flush()


def status_text(status: str | None) -> str:
    if status is None:
        return "-"
    return f"[{STATUS_STYLE.get(status, 'white')}]{status}[/]"


def counted(n: int, noun: str) -> str:
    """``1 task``, ``2 tasks``: for nouns whose plural takes an s."""
    return f"{n} {noun}{'' if n == 1 else 's'}"


def when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S") if value else "-"


class _Table(Table):
    """Rich shrinks only wrappable columns to fit, so the free-text last column is the wrappable
    one; each of its cells is kept to one line and cut with an ellipsis instead of wrapping."""

    empty = "none"

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        yield from super().__rich_console__(console, options)
        if not self.rows:  # headers alone read as a broken command: say that nothing matched
            yield Text(self.empty, style="dim")

    def add_row(self, *renderables: RenderableType | None, **options: Any) -> None:
        *head, last = renderables
        if isinstance(last, str):
            last = Text.from_markup(last, overflow="ellipsis")
            last.no_wrap = True
        super().add_row(*head, last, **options)


def table(title: str, columns: Sequence[str], empty: str = "none") -> Table:
    """Every column but the last keeps to one line at its full width; the last (free text) is
    cut to fit. (Only when the others alone are too wide are they folded.) ``empty`` is printed
    under the headers when no row was added."""
    t = _Table(title=title, title_justify="left", header_style="bold", box=box.SIMPLE_HEAD)
    t.empty = empty
    for i, column in enumerate(columns):
        last = i == len(columns) - 1
        t.add_column(column, no_wrap=not last, overflow="ellipsis" if last else "fold")
    return t


def actor() -> str:
    """Who is at the keyboard, for the audit trail."""
    try:
        return f"user:{getpass.getuser()}"
    except (OSError, KeyError):
        return "user:unknown"
