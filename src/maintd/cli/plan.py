"""``maintd plan``: validate, schema, reload."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import typer

from maintd.cli.common import JsonOption, console, counted, emit_json, err_console, fail
from maintd.plan.loader import PlanError, load_plan
from maintd.plan.schema import json_schema
from maintd.registry import Registry

app = typer.Typer(help="Check, describe and reload maintenance plans.", no_args_is_help=True)


@app.command()
def validate(
    path: str = typer.Argument(..., help="Plan file or directory."),
    as_json: bool = JsonOption,
) -> None:
    """Check a plan; print every problem with file:line and field. Exit 1 when invalid."""
    registry = Registry.default()
    try:
        loaded = load_plan(path, registry)
    except PlanError as exc:
        if as_json:
            emit_json({"ok": False, "problems": [p.__dict__ for p in exc.problems]})
        else:
            for problem in exc.problems:
                err_console.print(str(problem), highlight=False, soft_wrap=True)
            err_console.print(f"[bold red]{counted(len(exc.problems), 'problem')}[/]; the plan is not valid")
        raise typer.Exit(1) from None
    pairs = sum(len(loaded.plan.targets_of(t)) for t in loaded.plan.tasks if t.enabled)
    if as_json:
        emit_json(
            {
                "ok": True,
                "digest": loaded.digest,
                "targets": len(loaded.plan.targets),
                "tasks": len(loaded.plan.tasks),
                "schedules": pairs,
                "warnings": [w.__dict__ for w in loaded.warnings],
            }
        )
        return
    for warning in loaded.warnings:
        err_console.print(str(warning), highlight=False, soft_wrap=True)
    plan = loaded.plan
    console.print(
        f"[green]plan OK[/]: {counted(len(plan.targets), 'target')}, {counted(len(plan.tasks), 'task')}, "
        f"{counted(pairs, 'schedule')} ({', '.join(loaded.files)})",
        highlight=False,
        soft_wrap=True,
    )


@app.command()
def schema() -> None:
    """Print the plan's JSON Schema (point your editor's YAML plugin at it)."""
    typer.echo(json.dumps(json_schema(Registry.default()), indent=2))


@app.command()
def reload(
    url: str = typer.Option("http://127.0.0.1:8470", envvar="MAINTD_URL", help="The running maintd."),
    token: str = typer.Option(None, envvar="MAINTD_TOKEN", help="An API token (team-lead or above)."),
) -> None:
    """Ask a running maintd to re-read its plan (same as sending it SIGHUP)."""
    if not token:
        fail("no token: pass --token or set MAINTD_TOKEN (maintd token create --name you --role team-lead)")
    request = urllib.request.Request(
        url.rstrip("/") + "/api/v1/plan/reload",
        method="POST",
        headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            body = json.load(response)
    except urllib.error.HTTPError as exc:
        body = _json_or_text(exc.read())
        if exc.code == 422 and isinstance(body, dict):
            for problem in body.get("problems", []):
                err_console.print(problem, highlight=False, soft_wrap=True)
            fail("plan rejected; maintd keeps running the previous plan")
        detail = body.get("detail") if isinstance(body, dict) else body
        fail(f"{url} answered {exc.code}: {detail}")
    except (urllib.error.URLError, OSError) as exc:
        fail(f"cannot reach maintd at {url}: {getattr(exc, 'reason', exc)}")
    state = "changed" if body.get("changed") else "unchanged"
    console.print(f"[green]plan reloaded[/] ({state}, {str(body.get('digest'))[:12]})", highlight=False)
    for warning in body.get("warnings", []):
        err_console.print(warning, highlight=False, soft_wrap=True)


def _json_or_text(raw: bytes) -> object:
    try:
        return json.loads(raw)
    except ValueError:
        return raw.decode("utf-8", "replace")[:500]
