"""``maintd oncall who|shifts``: who is on call, from the plan's schedules."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import typer

from maintd.cli.common import DbOption, JsonOption, console, emit_json, fail, open_store, table, when
from maintd.cli.run import resolve_plan
from maintd.clock import SystemClock, utc
from maintd.oncall import OnCallSchedule, on_call, shifts
from maintd.plan.models import Plan
from maintd.registry import Registry

app = typer.Typer(help="On-call schedules: who is on call now, and the shifts ahead.", no_args_is_help=True)

PlanOption = typer.Option(
    None, "--plan", envvar="MAINTD_PLAN", help="Plan to read the schedules from (default: the active plan)."
)


def _plan(plan_path: str | None, db: str | None) -> Plan:
    if plan_path:
        from maintd.plan.loader import PlanError, load_plan

        try:
            return load_plan(plan_path, Registry.default()).plan
        except PlanError as exc:
            fail("the plan is not valid:\n" + "\n".join(map(str, exc.problems)))
    return resolve_plan(open_store(db), Registry.default(), None).plan


def _schedules(plan: Plan, name: str | None) -> list[OnCallSchedule]:
    if name is None:
        return list(plan.schedules)
    for schedule in plan.schedules:
        if schedule.name == name:
            return [schedule]
    fail(
        f"no schedule {name!r} in the plan; schedules: {', '.join(s.name for s in plan.schedules) or 'none'}"
    )


@app.command()
def who(
    schedule: str | None = typer.Option(None, "--schedule", "-s", help="Only this schedule."),
    at: datetime | None = typer.Option(
        None, "--at", help="At this time (ISO 8601, UTC if no offset; default: now)."
    ),
    plan_path: str | None = PlanOption,
    db: str | None = DbOption,
    as_json: bool = JsonOption,
) -> None:
    """Who is on call, per schedule and layer."""
    moment = utc(at) if at else SystemClock().now()
    found = [(s.name, on_call(s, moment)) for s in _schedules(_plan(plan_path, db), schedule)]
    if as_json:
        for name, layers in found:
            emit_json({"schedule": name, "at": moment.isoformat(), "layers": layers})
        return
    t = table(f"On call at {when(moment)} UTC", ["schedule", "layer", "person"])
    for name, layers in found:
        for layer, person in layers.items():
            t.add_row(name, layer, person or "[dim]nobody[/]")
    console.print(t)


@app.command("shifts")
def shifts_(
    schedule: str = typer.Option(..., "--schedule", "-s", help="The schedule."),
    from_: datetime | None = typer.Option(
        None, "--from", help="From this time (ISO 8601, UTC; default: now)."
    ),
    to: datetime | None = typer.Option(
        None, "--to", help="Until this time (default: two weeks after --from)."
    ),
    plan_path: str | None = PlanOption,
    db: str | None = DbOption,
    as_json: bool = JsonOption,
) -> None:
    """The shifts of SCHEDULE between --from and --to, every layer, in UTC."""
    start = utc(from_) if from_ else SystemClock().now()
    end = utc(to) if to else start + timedelta(weeks=2)
    if end <= start:
        fail("--to must be after --from")
    (found,) = _schedules(_plan(plan_path, db), schedule)
    listed = shifts(found, start, end)
    if as_json:
        emit_json(listed)
        return
    t = table(f"Shifts of {found.name} ({found.time_zone}), in UTC", ["start", "end", "layer", "person"])
    for shift in listed:
        t.add_row(when(shift.start), when(shift.end.astimezone(UTC)), shift.layer, shift.person)
    console.print(t)
