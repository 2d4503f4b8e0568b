"""``maintd change ...``: request, approve, execute and roll back changes.

Thin: every command is one call into maintd.changes in one transaction; a refusal is a
one-line error. Approvals are made by people in roles, so commands that act take an API
token (``--token`` or ``MAINTD_TOKEN``): its name is the person, its role what they may
approve. ``execute`` leaves the steps to ``maintd serve``; ``--wait`` runs them here.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime
from typing import Any

import typer
from pydantic import ValidationError
from rich.text import Text
from sqlalchemy.orm import Session

from maintd.auth import Principal, authenticate
from maintd.changes import orders, preview, service
from maintd.changes.health import RunnerChecks
from maintd.changes.model import ChangeError, ChangeRequest, ChangeState
from maintd.changes.worker import ChangeWorker
from maintd.cli.common import DbOption, JsonOption, console, emit_json, fail, open_store, table, when
from maintd.cli.run import resolve_plan
from maintd.clock import Clock, clock_from_spec
from maintd.engine import instance_name
from maintd.plan.loader import LoadedPlan
from maintd.registry import Registry
from maintd.runner.runner import Runner
from maintd.settings import Settings
from maintd.store.db import Store

app = typer.Typer(help="Change requests: create, approve, execute, roll back.", no_args_is_help=True)

IdArg = typer.Argument(..., help="The change's id.")
NoteOption = typer.Option("", "--note", "-n", help="Why, for the timeline.")
TokenOption = typer.Option(
    None,
    "--token",
    envvar="MAINTD_TOKEN",
    help="Your API token: who you are and your role (maintd token create).",
)
PlanOption = typer.Option(
    None,
    "--plan",
    envvar="MAINTD_PLAN",
    help="Plan to read the change types from (default: the active plan).",
)


@app.command("list")
def list_(
    state: ChangeState | None = typer.Option(None, help="Only this state."),
    limit: int = typer.Option(50, min=1, max=1000, help="At most this many, newest first."),
    db: str | None = DbOption,
) -> None:
    """Change requests, newest first."""
    with open_store(db).read() as session:
        rows = [
            (r.id, r.state, r.type, r.requested_by, r.created_at, r.title)
            for r in service.list_changes(session, state=state, limit=limit)
        ]
    t = table("changes", ["id", "state", "type", "requested by", "created (UTC)", "title"])
    for change_id, state_, type_, by, created, title in rows:
        t.add_row(str(change_id), state_, type_, by, when(created), Text(title))
    console.print(t)


@app.command()
def show(
    change_id: int = IdArg,
    plan_path: str | None = PlanOption,
    db: str | None = DbOption,
    as_json: bool = JsonOption,
) -> None:
    """A change: what it runs, its approvals, what is missing, and its timeline."""
    store = open_store(db)
    loaded = _plan(store, plan_path)
    try:
        with store.read() as session:
            view = service.get(session, change_id=change_id, settings=loaded.plan.changes)
    except ChangeError as exc:
        fail(str(exc))
    if as_json:
        emit_json(view)
        return
    console.print(f"[bold]change {view.id}[/]: {view.title}", highlight=False)
    facts = [
        ("state", view.state),
        ("type", view.type),
        ("procedure", f"{view.procedure} {view.params}" if view.params else view.procedure),
        (
            "targets",
            ", ".join(view.targets) + (f" (canary: {', '.join(view.canary)})" if view.canary else ""),
        ),
        ("watched", ", ".join(view.checks)),
        ("requested by", view.requested_by),
        ("evidence", ", ".join(f"{k}={v}" for k, v in view.evidence.items()) or "-"),
        ("missing", ", ".join(view.missing_approvals) or "-"),
        ("outcome", view.outcome or "-"),
    ]
    for name, value in facts:
        console.print(f"  {name + ':':14} {value}", highlight=False, markup=False)
    for a in view.approvals:
        console.print(f"  {a.decision}d by {a.person} ({a.role}) {when(a.at)} {a.note}", highlight=False)
    t = table("timeline", ["at (UTC)", "event", "by"])
    for e in view.timeline:
        t.add_row(when(e.at), e.kind, e.actor)
    console.print(t)


@app.command()
def create(
    type_: str = typer.Option(..., "--type", help="A change type of the plan, e.g. configuration-update."),
    title: str = typer.Option(..., "--title", help="One line: what changes."),
    procedure: str = typer.Option(..., "--procedure", help="A procedure of the plan: the commands run."),
    target: list[str] = typer.Option(..., "--target", "-t", help="A target (repeatable; applied in order)."),
    param: list[str] = typer.Option([], "--param", "-p", help="NAME=VALUE for the procedure (repeatable)."),
    canary: list[str] = typer.Option([], "--canary", help="A target applied and checked first (repeatable)."),
    check: list[str] = typer.Option(
        [], "--check", help="A task to watch instead of the type's (repeatable)."
    ),
    evidence: list[str] = typer.Option([], "--evidence", "-e", help="NAME=RUN_ID or NAME=URL (repeatable)."),
    description: str = typer.Option("", "--description", help="Why, and what approvers should know."),
    draft: bool = typer.Option(False, "--draft", help="Keep it a draft; submit later."),
    token: str | None = TokenOption,
    plan_path: str | None = PlanOption,
    db: str | None = DbOption,
) -> None:
    """Request a change; it is submitted for approval unless --draft."""
    store = open_store(db)
    loaded = _plan(store, plan_path)
    try:
        request = _request(
            type=type_,
            title=title,
            description=description,
            procedure=procedure,
            params=_pairs(param, "--param"),
            targets=target,
            canary=canary,
            checks=check or None,
            evidence=_pairs(evidence, "--evidence"),
            draft=draft,
        )
    except ValidationError as exc:
        fail("; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()))
    row = _do(
        store, token, lambda s, who: service.create(s, request=request, who=who, plan=loaded.plan, now=_now())
    )
    console.print(f"change {row.id} is {row.state}", highlight=False)


@app.command()
def submit(
    change_id: int = IdArg,
    evidence: list[str] = typer.Option([], "--evidence", "-e", help="NAME=RUN_ID or NAME=URL (repeatable)."),
    token: str | None = TokenOption,
    plan_path: str | None = PlanOption,
    db: str | None = DbOption,
) -> None:
    """Submit a draft for approval, with its evidence."""
    _decide(service.submit, change_id, token, plan_path, db, evidence=_pairs(evidence, "--evidence"))


@app.command()
def approve(
    change_id: int = IdArg,
    note: str = NoteOption,
    token: str | None = TokenOption,
    plan_path: str | None = PlanOption,
    db: str | None = DbOption,
) -> None:
    """Approve a change (the type's approval matrix says who may); approved once all are in."""
    _decide(service.approve, change_id, token, plan_path, db, note=note)


@app.command()
def reject(
    change_id: int = IdArg,
    note: str = NoteOption,
    token: str | None = TokenOption,
    plan_path: str | None = PlanOption,
    db: str | None = DbOption,
) -> None:
    """Reject a change pending approval (final)."""
    _decide(service.reject, change_id, token, plan_path, db, note=note)


def _decide(
    step: Callable[..., Any],
    change_id: int,
    token: str | None,
    plan_path: str | None,
    db: str | None,
    **extra: Any,
) -> None:
    """One approval-matrix step (submit, approve, reject) by the token's person, under the plan's rules."""
    store = open_store(db)
    settings = _plan(store, plan_path).plan.changes
    _state(
        store,
        token,
        lambda s, who: step(s, change_id=change_id, who=who, settings=settings, now=_now(), **extra),
    )


@app.command()
def cancel(
    change_id: int = IdArg, note: str = NoteOption, token: str | None = TokenOption, db: str | None = DbOption
) -> None:
    """Withdraw a change that has not started."""
    store = open_store(db)
    _state(
        store, token, lambda s, who: service.cancel(s, change_id=change_id, who=who, now=_now(), note=note)
    )


@app.command()
def execute(
    change_id: int = IdArg,
    dry_run: bool = typer.Option(
        False, "--dry-run", help="Show the steps and their commands; change nothing."
    ),
    override_freeze: str | None = typer.Option(
        None, "--override-freeze", help="A director's reason to execute during a change freeze (recorded)."
    ),
    wait: bool = typer.Option(False, "--wait", help="Run the steps here until it settles (no maintd serve)."),
    token: str | None = TokenOption,
    plan_path: str | None = PlanOption,
    db: str | None = DbOption,
) -> None:
    """Execute an approved change: snapshot, pre-check, apply (canary first), watch, roll back."""
    store = open_store(db)
    loaded = _plan(store, plan_path)
    if dry_run:
        try:
            with store.read() as session:
                steps = preview.plan_steps(service.load(session, change_id), loaded.plan)
        except ChangeError as exc:
            fail(str(exc))
        for i, line in enumerate(steps, 1):
            console.print(f"{i}. {line}", highlight=False, markup=False, soft_wrap=True)
        return
    settings = loaded.plan.changes
    _state(
        store,
        token,
        lambda s, who: orders.request_execution(
            s, change_id=change_id, who=who, settings=settings, now=_now(), override_reason=override_freeze
        ),
    )
    if wait:
        final = asyncio.run(_run_here(store, loaded, change_id))
        console.print(f"change {change_id} is {final}", highlight=False)
        raise typer.Exit(0 if final == ChangeState.completed.value else 1)


@app.command()
def rollback(
    change_id: int = IdArg, note: str = NoteOption, token: str | None = TokenOption, db: str | None = DbOption
) -> None:
    """Roll back a change now (while watched, or after a failed rollback)."""
    store = open_store(db)
    _state(
        store,
        token,
        lambda s, who: orders.request_rollback(s, change_id=change_id, who=who, now=_now(), reason=note),
    )


async def _run_here(store: Store, loaded: LoadedPlan, change_id: int) -> str:
    clock, owner = _clock(), instance_name()
    runner = Runner(store=store, registry=Registry.default(), clock=clock, owner=owner)
    checks = RunnerChecks(store=store, runner=runner, clock=clock, owner=owner)
    worker = ChangeWorker(store=store, clock=clock, checks=checks, owner=owner, plan=lambda: loaded)
    try:
        return await worker.run_until_settled(change_id)
    finally:
        await runner.stop(0)


def _request(**fields: Any) -> ChangeRequest:
    return ChangeRequest.model_validate(fields)


def _plan(store: Store, plan_path: str | None) -> LoadedPlan:
    return resolve_plan(store, Registry.default(), plan_path)


def _clock() -> Clock:
    """The system clock, or the file clock process tests give ``maintd serve`` too (MAINTD_CLOCK)."""
    return clock_from_spec(Settings.from_env().clock)


def _now() -> datetime:
    return _clock().now()


def _pairs(items: list[str], option: str) -> dict[str, str]:
    found: dict[str, str] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name:
            fail(f"{option} takes NAME=VALUE, not {item!r}")
        found[name.strip()] = value
    return found


def _who(session: Session, token: str | None) -> Principal:
    if not token:
        fail("this needs your API token: pass --token or set MAINTD_TOKEN (maintd token create NAME)")
    found = authenticate(session, token.strip())
    if found is None:
        fail("unknown or revoked token")
    return found[0]


def _do(store: Store, token: str | None, work: Callable[[Session, Principal], Any]) -> Any:
    try:
        with store.write() as session:
            return work(session, _who(session, token))
    except ChangeError as exc:
        fail(str(exc))


def _state(store: Store, token: str | None, work: Callable[[Session, Principal], Any]) -> None:
    row = _do(store, token, work)
    console.print(
        f"change {row.id} is {row.state}" + (f": {row.outcome}" if row.outcome else ""), highlight=False
    )
