"""``maintd review ...``: recurring reviews (the quarterly architecture review) as checklists.

Thin: every command is one call into maintd.reviews in one transaction, reading the reviews
and people of the active plan stored in the database; a refusal is a one-line error. As with
``maintd postmortem``, whoever can open the store may act; changes are recorded as
``user:<login>``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any

import typer
from rich.text import Text

from maintd.cli.common import DbOption, JsonOption, actor, console, emit_json, fail, open_store, table, when
from maintd.clock import SystemClock
from maintd.plan.postmortems import PostmortemSettings
from maintd.reviews import FindingStatus, ReviewError, ReviewState, findings, planned, service
from maintd.reviews.model import finding_view
from maintd.reviews.periods import parse
from maintd.store.models import ReviewFindingRow

app = typer.Typer(
    help="Recurring reviews (the quarterly architecture review): checklists and findings.",
    no_args_is_help=True,
)
finding_app = typer.Typer(
    help="Findings, each an action item: add, done, cancel, list.", no_args_is_help=True
)
app.add_typer(finding_app, name="finding")

IdArg = typer.Argument(..., help="The review's id (maintd review list).")
FindingArg = typer.Argument(..., help="The finding's id.")


@app.command("list")
def list_(
    state: ReviewState | None = typer.Option(None, help="Only this state."),
    name: str | None = typer.Option(None, help="Only this review of the plan."),
    limit: int = typer.Option(50, min=1, max=1000, help="At most this many, newest period first."),
    db: str | None = DbOption,
    as_json: bool = JsonOption,
) -> None:
    """Reviews, newest period first, with their progress."""
    with open_store(db).read() as session:
        found = service.list_reviews(session, state=state, name=name, limit=limit)
    if as_json:
        emit_json(found)
        return
    t = table("reviews", ["id", "review", "period", "state", "areas reviewed", "open findings", "due (UTC)"])
    for r in found:
        progress = f"{r.reviewed}/{r.areas}"
        t.add_row(str(r.id), Text(r.title), r.period, r.state, progress, str(r.open_findings),
                  when(r.period_end))  # fmt: skip
    console.print(t)


@app.command()
def show(review_id: int = IdArg, db: str | None = DbOption, as_json: bool = JsonOption) -> None:
    """A review's checklist and findings."""
    try:
        with open_store(db).read() as session:
            found = service.get_review(session, review_id=review_id)
    except ReviewError as exc:
        fail(str(exc))
    if as_json:
        emit_json(found)
        return
    console.print(
        Text(f"{found.title} {found.period} (review {found.id}): {found.state}, owner {found.owner}, "
             f"{found.reviewed}/{found.areas} areas reviewed, due {when(found.period_end)} UTC")
    )  # fmt: skip
    items = table("checklist", ["area", "title", "status", "by", "when (UTC)", "notes"])
    for i in found.items:
        items.add_row(
            i.area, Text(i.title), i.status, i.reviewed_by or "", when(i.reviewed_at), Text(i.notes)
        )
    console.print(items)
    _findings_table([f for f in found.findings])


@app.command()
def start(
    name: str = typer.Argument(..., help="A review of the active plan, e.g. architecture."),
    period: str | None = typer.Option(
        None, help="Its period (2026-Q4 for a quarterly one); the current one."
    ),
    db: str | None = DbOption,
) -> None:
    """Open a review now, on demand (the scheduler opens each period's when it starts)."""

    def open_(session: Any) -> Any:
        reviews = planned.stored_reviews(session)
        review = service.plan_review(reviews, name)
        try:
            chosen = parse(review.cadence, period) if period else None
        except ValueError as exc:
            raise ReviewError(str(exc)) from None
        return service.start(session, reviews=reviews, name=name, actor=actor(), now=SystemClock().now(),
                             period=chosen)  # fmt: skip

    row = _do(db, open_)
    console.print(f"review {row.id} opened: {row.title} {row.period}", highlight=False)


@app.command()
def check(
    review_id: int = IdArg,
    area: str = typer.Argument(..., help="The area, e.g. scalability."),
    notes: str = typer.Option(..., "--notes", "-n", help="What was reviewed and seen (the review's record)."),
    db: str | None = DbOption,
) -> None:
    """Record an area reviewed; recording it again replaces the notes."""
    now = SystemClock().now()
    _do(db, lambda s: service.check(s, review_id=review_id, area=area, notes=notes, actor=actor(), now=now))
    console.print(f"review {review_id}: {area} reviewed", highlight=False)


@app.command()
def complete(
    review_id: int = IdArg,
    note: str = typer.Option("", "--note", help="A closing word, for the record."),
    db: str | None = DbOption,
) -> None:
    """Complete a review: refused while an area is unreviewed; final."""
    now = SystemClock().now()
    row = _do(db, lambda s: service.complete(s, review_id=review_id, actor=actor(), now=now, note=note))
    late = "" if row.completed_at < row.period_end else " (after its period ended)"
    console.print(f"review {review_id} complete{late}", highlight=False)


@finding_app.command("add")
def finding_add(
    review_id: int = IdArg,
    area: str = typer.Option(..., "--area", "-a", help="The area it was found in."),
    title: str = typer.Option(..., "--title", "-t", help="What is to be done."),
    owner: str = typer.Option(..., "--owner", "-o", help="A person of the active plan."),
    due: str = typer.Option(..., "--due", "-d", help="Due date, YYYY-MM-DD: by the end of that day (UTC)."),
    detail: str = typer.Option("", "--detail", help="What was found, why it matters."),
    db: str | None = DbOption,
) -> None:
    """Record a finding of an open review as an action item; its owner is reminded until it is done."""
    due_on = _date(due)

    def add(session: Any) -> Any:
        row = service.load(session, review_id)
        return findings.add_finding(
            session, review_id=review_id, area=area, title=title, owner=owner, due_on=due_on, detail=detail,
            people=set(planned.stored_people(session)), settings=_settings(session, row.name), actor=actor(),
            now=SystemClock().now(),
        )  # fmt: skip

    row = _do(db, add)
    console.print(f"finding {row.id} added: {owner}, due {due_on.isoformat()}", highlight=False)


@finding_app.command("done")
def finding_done(finding_id: int = FindingArg, db: str | None = DbOption) -> None:
    """Mark a finding done (on time when done by the end of its due day, UTC)."""
    row = _finish(db, finding_id, FindingStatus.done)
    console.print(f"finding {finding_id} done {'on time' if row.on_time else 'late'}", highlight=False)


@finding_app.command("cancel")
def finding_cancel(finding_id: int = FindingArg, db: str | None = DbOption) -> None:
    """Cancel a finding: no more reminders; it does not count in the on-time KPI."""
    _finish(db, finding_id, FindingStatus.cancelled)
    console.print(f"finding {finding_id} cancelled", highlight=False)


@finding_app.command("list")
def finding_list(
    status: FindingStatus | None = typer.Option(None, help="Only this status."),
    owner: str | None = typer.Option(None, help="Only this owner's."),
    review: int | None = typer.Option(None, help="Only this review's."),
    overdue: bool = typer.Option(False, "--overdue", help="Only open ones past their due day."),
    db: str | None = DbOption,
    as_json: bool = JsonOption,
) -> None:
    """Findings of every review, earliest due first."""
    now = SystemClock().now() if overdue else None
    with open_store(db).read() as session:
        found = findings.list_findings(session, status=status, owner=owner, review_id=review, overdue_at=now)
        views = [finding_view(r) for r in found]
    if as_json:
        emit_json(views)
        return
    _findings_table(views)


def _findings_table(found: list[Any]) -> None:
    t = table("findings", ["id", "review", "area", "owner", "due", "status", "done (UTC)", "title"])
    for f in found:
        done = when(f.completed_at) + ("" if f.on_time is None else " on time" if f.on_time else " late")
        t.add_row(str(f.id), str(f.review_id), f.area, f.owner, f.due_on.isoformat(), f.status, done,
                  Text(f.title))  # fmt: skip
    console.print(t)


def _settings(session: Any, name: str) -> PostmortemSettings:
    return planned.settings_of(planned.stored_reviews(session), name)


def _do(db: str | None, work: Callable[[Any], Any]) -> Any:
    try:
        with open_store(db).write() as session:
            return work(session)
    except ReviewError as exc:
        fail(str(exc))


def _finish(db: str | None, finding_id: int, status: FindingStatus) -> ReviewFindingRow:
    def finish(session: Any) -> Any:
        row = findings.get_finding(session, finding_id=finding_id)
        review = service.load(session, row.review_id)
        return findings.update_finding(session, finding_id=finding_id, people=(),
                                       settings=_settings(session, review.name), actor=actor(),
                                       now=SystemClock().now(), status=status)  # fmt: skip

    result: ReviewFindingRow = _do(db, finish)
    return result


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        fail(f"{text!r} is not a date: write YYYY-MM-DD")
