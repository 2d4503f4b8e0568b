"""Review timers (maintd.timers), queueing notifications through the outbox:

- ``review-open``: a period of a review's cadence starts: open that period's review (its
  checklist from the plan), tell the owner and the participants, and set the next period's
  timer. The current period's timer is set when the plan is activated, due at once, so a
  plan loaded mid-quarter opens this quarter's review.
- ``review-due``: a review is still open two weeks before its period ends (``REMINDER`` to the
  owner, with the areas left), and when it has ended (``OVERDUE``); set when the review opens.
- ``review-finding``: a finding's action item is due soon or overdue: the chain of
  maintd.postmortems.reminders (``remind_before`` the end of the due day, then every
  ``overdue_every``, at most ``overdue_reminders`` times), with the review's ``findings``
  settings, to the finding's owner.

A handler re-checks the state when it fires: a finding done, cancelled or moved since its
timer was set queues nothing; a review already opened on demand is not opened twice.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from maintd import timers
from maintd.notify.message import Message
from maintd.notify.outbox import enqueue
from maintd.plan.models import Plan
from maintd.plan.oncall import Person
from maintd.plan.postmortems import PostmortemSettings
from maintd.plan.reviews import Review
from maintd.postmortems.reminders import OVERDUE, REMINDER, Chain, deadline, recipient
from maintd.reviews.periods import ReviewPeriod, following, parse, period_of
from maintd.store.events import SYSTEM, Event, append
from maintd.store.models import ReviewFindingRow, ReviewRow, TimerRow

OPEN, DUE, FINDING = "review-open", "review-due", "review-finding"  # timer kinds
DUE_BEFORE = timedelta(days=14)  # a review still open this long before its period ends: remind the owner
OPENED = "opened"  # the notification state of "a review is open"
FINDINGS = Chain(FINDING, "review-finding", "finding")  # the post-mortem actions' reminder chain


def plan_subject(name: str) -> str:
    return f"review-plan:{name}"


def finding_subject(finding_id: int) -> str:
    return FINDINGS.subject(finding_id)


def schedule_openings(session: Session, reviews: list[Review], now: datetime) -> int:
    """Each review's opening timers: the current period's (due now) and the next one's."""
    added = 0
    for review in reviews:
        current = period_of(review.cadence, now)
        for period in (current, following(review.cadence, current)):
            added += _opening(session, review, period, now)
    return added


def _opening(session: Session, review: Review, period: ReviewPeriod, now: datetime) -> int:
    payload = {"review": review.name, "period": period.key, "cadence": review.cadence.value}
    return int(
        timers.schedule(
            session,
            kind=OPEN,
            subject=plan_subject(review.name),
            step=f"open:{period.key}",
            due_at=max(now, period.start),
            payload=payload,
            now=now,
        )
    )


def schedule_due(session: Session, row: ReviewRow, *, now: datetime) -> int:
    """The open review's reminder two weeks before its period ends, and its overdue notice at the end."""
    added = 0
    for step, at in (("due", row.period_end - DUE_BEFORE), ("late", row.period_end)):
        added += timers.schedule(session, kind=DUE, subject=f"review:{row.id}", step=step,
                                 due_at=max(now, at), payload={"review": row.id}, now=now)  # fmt: skip
    return added


def schedule_finding(
    session: Session, row: ReviewFindingRow, *, settings: PostmortemSettings, now: datetime
) -> int:
    """The finding's first timers (the early reminder, the first overdue one); how many were added."""
    return FINDINGS.schedule(session, item_id=row.id, due_on=row.due_on, settings=settings, now=now)


def cancel_finding(session: Session, row: ReviewFindingRow, *, now: datetime) -> int:
    return FINDINGS.cancel(session, item_id=row.id, now=now)


def handlers(plan: Plan, *, base_url: str) -> dict[str, timers.Handler]:
    """The two timer kinds, bound to a loaded plan (the engine merges them into its handlers)."""
    reviews = {r.name: r for r in plan.reviews}
    people = {p.name: p for p in plan.people}
    base = base_url.rstrip("/")

    def fire_open(session: Session, timer: TimerRow, now: datetime) -> None:
        _open(session, timer, now, reviews, people, base)

    def fire_finding(session: Session, timer: TimerRow, now: datetime) -> None:
        _finding(session, timer, now, reviews, people, base)

    def fire_due(session: Session, timer: TimerRow, now: datetime) -> None:
        _due(session, timer, now, people, base)

    return {OPEN: fire_open, DUE: fire_due, FINDING: fire_finding}


def _open(
    session: Session,
    timer: TimerRow,
    now: datetime,
    reviews: dict[str, Review],
    people: dict[str, Person],
    base: str,
) -> None:
    from maintd.reviews import service  # service imports nothing of this module's users: no cycle

    review = reviews.get(str(timer.payload["review"]))
    if review is None or review.cadence.value != timer.payload.get("cadence"):
        return  # gone from the plan, or another cadence now: its own timers are set at activation
    period = parse(review.cadence, str(timer.payload["period"]))
    if now >= period.end:
        period = period_of(review.cadence, now)  # maintd was down all period: open the current one
    _opening(session, review, following(review.cadence, period), now)
    row = service.open_period(session, review, period, actor=SYSTEM, now=now)
    if row is None:
        return  # opened on demand already
    due = f"{period.end:%Y-%m-%d %H:%M} UTC"
    message = Message(
        title=f"{row.title} {period.key} is open",
        summary=f"{row.title} {period.key}: {len(review.areas)} areas to review before {due}. "
        f"Owner: {review.owner}.",
        state=OPENED,
        url=f"{base}/api/v1/reviews/{row.id}",
        details=[
            "Areas: " + ", ".join(a.name for a in review.areas),
            f"Record an area: maintd review check {row.id} AREA --notes '...'",
        ],
    )
    for person in dict.fromkeys([review.owner, *review.participants]):
        enqueue(
            session,
            subject=service.subject(row.id),
            incident_id=None,
            recipient=recipient(people, person),
            state=OPENED,
            step=timer.step,
            message=message,
            now=now,
        )


def _due(session: Session, timer: TimerRow, now: datetime, people: dict[str, Person], base: str) -> None:
    from maintd.reviews import service
    from maintd.reviews.model import ItemStatus, ReviewState

    row = session.get(ReviewRow, int(timer.payload["review"]))
    if row is None or row.state != ReviewState.open.value:
        return  # completed since the timer was set
    items = service.items_of(session, row.id)
    left = [i.area for i in items if i.status != ItemStatus.reviewed.value]
    state = OVERDUE if timer.step == "late" else REMINDER
    due = f"{row.period_end:%Y-%m-%d %H:%M} UTC"
    when = f"its period ended {due}" if state == OVERDUE else f"due before {due}"
    message = Message(
        title=f"{row.title} {row.period} (review {row.id}): {'overdue' if state == OVERDUE else 'due soon'}",
        summary=f"{row.title} {row.period} is still open, {when}: {len(items) - len(left)} of {len(items)} "
        f"areas reviewed. Owner: {row.owner}.",
        state=state,
        url=f"{base}/api/v1/reviews/{row.id}",
        details=[
            f"Not reviewed yet: {', '.join(left) or 'none'}",
            f"When done: maintd review complete {row.id}",
        ],
    )
    owner = recipient(people, row.owner)
    enqueue(session, subject=service.subject(row.id), incident_id=None, recipient=owner, state=state,
            step=timer.step, message=message, now=now)  # fmt: skip
    payload = {"review": row.name, "period": row.period, "reminder": state, "left": left}
    append(session, Event("review.reminded", service.subject(row.id), now, SYSTEM, payload))


def _finding(
    session: Session,
    timer: TimerRow,
    now: datetime,
    reviews: dict[str, Review],
    people: dict[str, Person],
    base: str,
) -> None:
    from maintd.reviews import service

    row = FINDINGS.still_due(session, ReviewFindingRow, timer)
    if row is None:
        return
    review_row = service.load(session, row.review_id)
    review = reviews.get(review_row.name)
    settings = review.findings if review is not None else PostmortemSettings()
    FINDINGS.remind(
        session, timer, row, people=people, incident_id=None, settings=settings, now=now,
        message=lambda state: message(row, review_row.title, review_row.period, state, now, base=base),
        event=("review.finding.reminded", service.subject(row.review_id)),
    )  # fmt: skip


def message(
    row: ReviewFindingRow, title: str, period: str, state: str, now: datetime, *, base: str
) -> Message:
    due = row.due_on.isoformat()
    if state == OVERDUE:
        late = (now - deadline(row.due_on)).days
        when = f"overdue: it was due {due}" + (f" ({late} day{'s' if late != 1 else ''} ago)" if late else "")
    else:
        when = f"due by the end of {due} (UTC)"
    return Message(
        title=f"review finding {row.id}: {row.title}",
        summary=f"{row.title} ({title} {period}, {row.area}): {when}. Owner: {row.owner}.",
        state=state,
        url=f"{base}/api/v1/reviews/{row.review_id}",
        details=[f"When it is done: maintd review finding done {row.id}"],
    )
