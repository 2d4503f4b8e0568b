"""``maintd run TASK``: run a task now, outside its schedule, and wait for the result."""

from __future__ import annotations

import asyncio

import typer
from sqlalchemy import select

from maintd import views
from maintd.checks.base import Status
from maintd.cli.common import (
    DbOption,
    JsonOption,
    actor,
    console,
    emit_json,
    err_console,
    fail,
    open_store,
    status_text,
)
from maintd.clock import SystemClock
from maintd.engine import instance_name
from maintd.plan.loader import LoadedPlan, PlanError, load_plan, plan_from_document
from maintd.registry import Registry
from maintd.runner.children import Children
from maintd.runner.runner import Runner
from maintd.scheduler.claims import claim_manual
from maintd.scheduler.orders import RunOrder
from maintd.settings import Settings
from maintd.store.db import Store
from maintd.store.models import RunRow


def run(
    task: str = typer.Argument(..., help="The task's name."),
    target: list[str] = typer.Option(None, "--target", "-t", help="Only this target (repeatable)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Show what an action would do; change nothing."),
    plan_path: str | None = typer.Option(
        None, "--plan", envvar="MAINTD_PLAN", help="Plan to read the task from (default: the active plan)."
    ),
    db: str | None = DbOption,
    as_json: bool = JsonOption,
) -> None:
    """Run TASK now on its targets and print the results; exit 0/1/2/3 for the worst status."""
    store = open_store(db)
    registry = Registry.default()
    loaded = resolve_plan(store, registry, plan_path)
    try:
        spec = loaded.plan.task(task)
    except KeyError:
        fail(f"no task {task!r} in the plan; tasks: {', '.join(t.name for t in loaded.plan.tasks) or 'none'}")
    selected = [t.name for t in loaded.plan.targets_of(spec)]
    for name in target or []:
        if name not in selected:
            fail(f"task {task!r} does not run on {name!r}; its targets: {', '.join(selected) or 'none'}")
    names = target or selected
    if not names:
        fail(f"task {task!r} selects no targets")
    results = asyncio.run(run_manual(store, registry, loaded, spec.name, names, dry_run))
    if as_json:
        emit_json(results)
    for view in results:
        if not as_json:
            took = (view.duration_ms or 0) / 1000
            line = f"{status_text(view.status)}  {view.task} on {view.target} ({took:.2f}s)"
            console.print(line + ("  [dim]dry run[/]" if view.dry_run else ""), highlight=False)
            if view.output:
                console.print(view.output, highlight=False, markup=False, soft_wrap=True)
    worst = max((Status(v.status or "unknown") for v in results), key=lambda s: s.rank, default=Status.ok)
    raise typer.Exit({"ok": 0, "warning": 1, "critical": 2, "unknown": 3}[worst.value])


async def run_manual(
    store: Store, registry: Registry, loaded: LoadedPlan, task: str, targets: list[str], dry_run: bool
) -> list[views.RunView]:
    """Claim, execute and record one manual run of ``task`` per target; the stored runs come back."""
    clock = SystemClock()
    owner = instance_name()
    orders: list[RunOrder] = []
    spec = loaded.plan.task(task)
    with store.write() as session:
        for name in targets:
            order = claim_manual(
                session, loaded, spec, name, clock.now(), owner=owner, dry_run=dry_run, actor=actor()
            )
            if order is None:
                err_console.print(f"{task} is already running on {name}; skipped", highlight=False)
            else:
                orders.append(order)
    state_dir = Settings.from_env().state_dir
    runner = Runner(
        store=store,
        registry=registry,
        clock=clock,
        owner=owner,
        output_limit=loaded.plan.runner.output_limit,
        children=Children(state_dir / "children") if state_dir else None,
    )
    try:
        await runner.run_all(orders)
    finally:
        await runner.stop(0)
    with store.read() as session:
        rows = session.scalars(select(RunRow).where(RunRow.id.in_([o.run_id for o in orders])))
        return sorted((views.run_view(r) for r in rows), key=lambda v: v.target)


def resolve_plan(store: Store, registry: Registry, plan_path: str | None) -> LoadedPlan:
    """The plan at ``plan_path``, else the active plan stored by ``maintd serve``; exits with the reason."""
    if plan_path:
        try:
            return load_plan(plan_path, registry)
        except PlanError as exc:
            fail("the plan is not valid:\n" + "\n".join(map(str, exc.problems)))
    with store.read() as session:
        stored = views.active_plan(session)
    if stored is None:
        fail("no plan: pass --plan PATH, or start maintd serve once so the active plan is stored")
    return plan_from_document(stored.document, registry, stored.source)
