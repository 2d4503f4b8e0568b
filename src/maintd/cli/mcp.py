"""``maintd mcp list`` and ``maintd mcp health-check NAME``: the plan's MCP servers; check one now."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

import typer
from pydantic import BaseModel
from sqlalchemy import select

from maintd.checks.base import CheckResult, Resources, RunContext, Status
from maintd.cli import run as run_cli
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
from maintd.clock import SystemClock
from maintd.plan.loader import LoadedPlan
from maintd.plan.models import Target, TargetKind, Task
from maintd.registry import Registry
from maintd.store.models import ScheduleRow

app = typer.Typer(help="MCP servers: list the plan's, health-check one now.", no_args_is_help=True)

KIND = "mcp"
_EXIT = {"ok": 0, "warning": 1, "critical": 2, "unknown": 3}

PlanOption = typer.Option(
    None, "--plan", envvar="MAINTD_PLAN", help="Plan to read (default: the active plan)."
)


class McpTaskState(BaseModel):
    task: str
    last_status: str | None
    last_finished_at: datetime | None


class McpServerView(BaseModel):
    name: str
    transport: str
    endpoint: str
    description: str
    tasks: list[McpTaskState]


class HealthCheckView(BaseModel):
    target: str
    task: str | None
    recorded: bool
    run_id: str | None
    status: str
    duration_ms: float | None
    output: str
    metrics: dict[str, float]


@app.command("list")
def list_servers(
    plan_path: str | None = PlanOption, db: str | None = DbOption, as_json: bool = JsonOption
) -> None:
    """MCP servers in the plan (targets of kind mcp_server), their mcp tasks and each one's last status."""
    store = open_store(db)
    loaded = run_cli.resolve_plan(store, Registry.default(), plan_path)
    servers = [t for t in loaded.plan.targets if t.kind is TargetKind.mcp_server]
    tasks = {s.name: _mcp_tasks(loaded, s) for s in servers}
    names = {task.name for found in tasks.values() for task in found}
    with store.read() as session:
        rows = session.scalars(
            select(ScheduleRow).where(
                ScheduleRow.task.in_(names), ScheduleRow.target.in_([s.name for s in servers])
            )
        )
        last = {(r.task, r.target): (r.last_status, r.last_finished_at) for r in rows}
    found: list[McpServerView] = []
    for server in servers:
        known: list[McpTaskState] = []
        for task in tasks[server.name]:
            status, finished = last.get((task.name, server.name), (None, None))
            known.append(McpTaskState(task=task.name, last_status=status, last_finished_at=finished))
        found.append(
            McpServerView(
                name=server.name,
                transport=_transport(server),
                endpoint=_endpoint(server),
                description=server.description,
                tasks=known,
            )
        )
    if as_json:
        emit_json(found)
        return
    t = table("MCP servers", ["server", "transport", "task", "last", "finished (UTC)", "endpoint"])
    for view in found:
        states: list[McpTaskState | None] = [*view.tasks] or [None]
        for state in states:
            t.add_row(
                view.name,
                view.transport,
                state.task if state else "-",
                status_text(state.last_status) if state else "-",
                when(state.last_finished_at) if state else "-",
                view.endpoint,
            )
    console.print(t)


@app.command("health-check")
def health_check(
    name: str = typer.Argument(..., help="The MCP server's target name."),
    task: str | None = typer.Option(None, "--task", help="Which mcp task's params, when several check NAME."),
    dry_run: bool = typer.Option(
        False, "--dry-run", help="Skip the task's call_tool (a call may change things)."
    ),
    timeout: float = typer.Option(
        30.0, "--timeout", min=0.1, help="Seconds, when no mcp task checks NAME (else the task's timeout)."
    ),
    plan_path: str | None = PlanOption,
    db: str | None = DbOption,
    as_json: bool = JsonOption,
) -> None:
    """Check the MCP server NAME now: protocol version, server info, tools, latencies; exit 0/1/2/3.

    Runs NAME's task of kind mcp as a manual run, recorded like `maintd run`; with none, default params.
    """
    store = open_store(db)
    registry = Registry.default()
    loaded = run_cli.resolve_plan(store, registry, plan_path)
    try:
        target = loaded.plan.target(name)
    except KeyError:
        servers = [t.name for t in loaded.plan.targets if t.kind is TargetKind.mcp_server]
        fail(f"no target {name!r} in the plan; MCP servers: {', '.join(servers) or 'none'}")
    candidates = _mcp_tasks(loaded, target)
    if task is not None:
        candidates = [t for t in candidates if t.name == task]
        if not candidates:
            fail(f"no task {task!r} of kind mcp checks {name!r}")
    if candidates:
        spec = candidates[0]
        views = asyncio.run(run_cli.run_manual(store, registry, loaded, spec.name, [name], dry_run))
        if not views:
            fail(f"{spec.name} is already running on {name}", 3)
        run = views[0]
        view = HealthCheckView(
            target=name,
            task=spec.name,
            recorded=True,
            run_id=run.id,
            status=run.status or "unknown",
            duration_ms=run.duration_ms,
            output=run.output,
            metrics=run.metrics,
        )
    else:
        result, took = asyncio.run(_check_now(target, timeout, dry_run))
        view = HealthCheckView(
            target=name,
            task=None,
            recorded=False,
            run_id=None,
            status=result.status.value,
            duration_ms=took * 1000,
            output=result.output,
            metrics=result.metrics,
        )
    if as_json:
        emit_json(view)
    else:
        how = f"task {view.task}, run {view.run_id[:8]}" if view.run_id else "default params, not recorded"
        took_s = (view.duration_ms or 0) / 1000
        console.print(
            f"{status_text(view.status)}  mcp health-check {name} ({how}, {took_s:.2f}s)"
            + ("  [dim]dry run[/]" if dry_run else ""),
            highlight=False,
        )
        console.print(view.output, highlight=False, markup=False, soft_wrap=True)
    raise typer.Exit(_EXIT.get(view.status, 3))


async def _check_now(target: Target, timeout: float, dry_run: bool) -> tuple[CheckResult, float]:
    """The mcp check with default params, outside any task: nothing is claimed or recorded."""
    kind = Registry.default().get(KIND)
    config = kind.config()
    spec = Task.model_validate(
        {"name": "mcp-health-check", "kind": KIND, "targets": [target.name], "schedule": {"every": "1h"}}
    )
    clock = SystemClock()
    started = asyncio.get_running_loop().time()
    async with Resources.open() as resources:
        ctx = RunContext(
            spec, target, config, clock, clock.now() + timedelta(seconds=timeout), resources, dry_run
        )
        try:
            async with asyncio.timeout(timeout):
                result = await kind.build(config).run(ctx)
        except TimeoutError:
            result = CheckResult(Status.unknown, f"timed out after {timeout:g} s")
    return result, asyncio.get_running_loop().time() - started


def _mcp_tasks(loaded: LoadedPlan, target: Target) -> list[Task]:
    return [t for t in loaded.plan.tasks if t.kind == KIND and t.targets.matches(target)]


def _transport(target: Target) -> str:
    if "command" in target.connection:
        return "stdio"
    if "url" in target.connection:
        return "http"
    return "-"


def _endpoint(target: Target) -> str:
    conn = target.connection
    if "command" in conn:
        args = conn.get("args") or []
        return " ".join([str(conn["command"]), *map(str, args if isinstance(args, list) else [args])])
    return str(conn.get("url", "-"))
