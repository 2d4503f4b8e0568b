"""``maintd oncall who|shifts|handoff|feed-url``: who is on call, handoff reports, calendar feed URLs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import typer

from maintd.cli.common import (
    DbOption,
    JsonOption,
    actor,
    console,
    emit_json,
    fail,
    open_store,
    table,
    when,
)
from maintd.cli.run import resolve_plan
from maintd.clock import SystemClock, utc
from maintd.oncall import OnCallSchedule, on_call, shifts
from maintd.oncall.handoff import Report, age, handoff_report, report_window
from maintd.plan.models import Plan
from maintd.plan.types import parse_duration
from maintd.registry import Registry
from maintd.settings import Settings
from maintd.signing import Grant, sign

app = typer.Typer(
    help="On-call schedules: who is on call now, the shifts ahead, handoff reports, calendar feed URLs.",
    no_args_is_help=True,
)

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


@app.command()
def handoff(
    schedule: str | None = typer.Option(None, "--schedule", "-s", help="Only this schedule."),
    at: datetime | None = typer.Option(
        None, "--at", help="The report at this time (ISO 8601, UTC if no offset; default: now)."
    ),
    plan_path: str | None = PlanOption,
    db: str | None = DbOption,
    as_json: bool = JsonOption,
) -> None:
    """The handoff report: open incidents, pages and incidents since the previous handoff."""
    moment = utc(at) if at else SystemClock().now()
    found = _schedules(_plan(plan_path, db), schedule)
    with open_store(db).read() as session:
        reports = [
            handoff_report(session, schedule=s, at=moment, since=report_window(s, moment)) for s in found
        ]
    if as_json:
        emit_json(reports)
        return
    for report in reports:
        _print_report(report)


def _print_report(report: Report) -> None:
    since = when(report.since)
    console.print(f"[bold]Handoff of {report.schedule}[/] at {when(report.at)} UTC, shift since {since} UTC")
    for h in report.handoffs:
        console.print(f"  {h.layer}: {h.outgoing or 'nobody'} -> [bold]{h.incoming}[/]")
    if not report.handoffs:
        now = ", ".join(f"{layer}: {person or 'nobody'}" for layer, person in report.on_call.items())
        console.print(f"  no handoff at this time; on call: {now}")
    t = table(
        f"Open incidents ({len(report.open_incidents)})", ["id", "prio", "state", "age", "assignee", "title"]
    )
    for i in report.open_incidents:
        t.add_row(str(i.id), i.priority, i.state, age(i.age_seconds), i.assignee or "-", i.title)
    console.print(t)
    pages = table(
        f"Pages sent during the shift ({sum(p.sent for p in report.pages)})",
        ["recipient", "sent", "incidents"],
    )
    for p in report.pages:
        pages.add_row(p.recipient, str(p.sent), ", ".join(f"#{i}" for i in p.incident_ids) or "-")
    console.print(pages)
    moved = table("Opened and resolved during the shift", ["id", "prio", "what", "state", "title"])
    for what, items in (("opened", report.opened), ("resolved", report.resolved)):
        for i in items:
            moved.add_row(str(i.id), i.priority, what, i.state, i.title)
    console.print(moved)


@app.command("feed-url")
def feed_url(
    schedule: str | None = typer.Argument(
        None, help="The schedule whose feed to open (or give --person instead)."
    ),
    person: str | None = typer.Option(
        None, "--person", "-p", help="A person's feed instead (every schedule)."
    ),
    expires: str | None = typer.Option(
        None, "--expires", help="The URL stops working this long from now (e.g. 90d; default: never)."
    ),
    public_url: str | None = typer.Option(
        None, "--public-url", envvar="MAINTD_PUBLIC_URL", help="How calendar apps reach maintd."
    ),
    plan_path: str | None = PlanOption,
    db: str | None = DbOption,
) -> None:
    """A calendar feed URL with a signed token in it, for apps that cannot send a header."""
    if (schedule is None) == (person is None):
        fail("give a SCHEDULE or --person NAME (one of them)")
    plan = _plan(plan_path, db)
    if person is not None and person not in {p.name for p in plan.people}:
        fail(f"no person {person!r} in the plan")
    if schedule is not None:
        _schedules(plan, schedule)
    try:
        lasts = parse_duration(expires) if expires else None
    except ValueError as exc:
        fail(f"--expires: {exc}")
    now = SystemClock().now()
    subject, path = (f"person:{person}", f"people/{person}") if person else (f"schedule:{schedule}", schedule)
    with open_store(db).write() as session:
        token = sign(session, Grant("feed", subject, actor(), now + lasts if lasts else None))
    base = Settings.from_env(database_url=db, public_url=public_url).base_url
    typer.echo(f"{base}/api/v1/oncall/{path}.ics?token={token}")
