"""Handoff reports delivered at each handoff: queued to the outgoing and incoming person, on a timer.

Each schedule keeps one pending ``handoff`` timer (maintd.timers) at its next
handoff. When it fires, the report of the shift that ends is queued to both
people (one notification per person and handoff, never two), and the timer of
the following handoff is scheduled. The handlers see the plan the engine has
loaded, so a changed rotation is honoured; a timer left at a time that is no
longer a handoff queues nothing and moves on.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy.orm import Session

from maintd import timers
from maintd.notify.message import Message
from maintd.notify.outbox import Recipient, enqueue
from maintd.oncall.handoff import HANDOFF, Report, handoff_report, next_handoffs, report_window
from maintd.plan.oncall import OnCallSchedule, Person
from maintd.store.models import TimerRow


def subject(schedule: str) -> str:
    return f"schedule:{schedule}"


def queue_handoff(session: Session, *, report: Report, people: Iterable[Person], now: datetime) -> int:
    """Queue the report to every outgoing and incoming person of its handoffs; how many were queued.

    The key is (schedule, person, ``handoff``, the handoff time), so queueing again is a no-op.
    A person missing from ``people`` gets a failed row saying they have no channels.
    """
    by_name = {p.name: p for p in people}
    names = sorted({n for h in report.handoffs for n in (h.outgoing, h.incoming) if n is not None})
    message = Message(
        title=f"Handoff: {report.schedule}",
        summary=f"On-call handoff of {report.schedule} at {report.at.strftime('%Y-%m-%d %H:%M UTC')}",
        state=HANDOFF,
        details=report.lines(),
    )
    queued = 0
    for name in names:
        person = by_name.get(name)
        recipient = Recipient(f"person:{name}", list(person.notify) if person else [])
        queued += enqueue(
            session,
            subject=subject(report.schedule),
            incident_id=None,
            recipient=recipient,
            state=HANDOFF,
            step=report.at.isoformat(),
            message=message,
            now=now,
        )
    return queued


def schedule_next_handoffs(session: Session, *, schedules: Iterable[OnCallSchedule], now: datetime) -> int:
    """Make each schedule's pending handoff timer the one at its next handoff after ``now``.

    Idempotent (call it after every plan load); a pending timer at a time that is no
    longer the next handoff is cancelled. Returns how many timers were added.
    """
    added = 0
    for schedule in schedules:
        coming = next_handoffs(schedule, now)
        step = coming[0].at.isoformat() if coming else None
        waiting = timers.pending(session, subject=subject(schedule.name), kind=HANDOFF)
        if any(t.step == step for t in waiting):
            continue
        if waiting:
            timers.cancel(session, subject=subject(schedule.name), kind=HANDOFF, now=now)
        if coming:
            added += timers.schedule(
                session,
                kind=HANDOFF,
                subject=subject(schedule.name),
                step=coming[0].at.isoformat(),
                due_at=coming[0].at,
                payload={"schedule": schedule.name},
                now=now,
            )
    return added


def handlers(*, people: list[Person], schedules: list[OnCallSchedule]) -> dict[str, timers.Handler]:
    """The ``handoff`` timer kind, bound to a loaded plan's people and schedules (the engine merges
    this into the handlers it gives maintd.timers.fire_due)."""

    def fire(session: Session, timer: TimerRow, now: datetime) -> None:
        fire_handoff(session, timer, now, people=people, schedules=schedules)

    return {HANDOFF: fire}


def fire_handoff(
    session: Session,
    timer: TimerRow,
    now: datetime,
    *,
    people: list[Person],
    schedules: list[OnCallSchedule],
) -> None:
    """Report the shift that ends at the timer's handoff, queue it, and set the next handoff's timer."""
    found = [s for s in schedules if s.name == timer.payload.get("schedule")]
    if not found:
        return  # the schedule left the plan: no report, no next timer
    schedule, at = found[0], timer.due_at
    report = handoff_report(session, schedule=schedule, at=at, since=report_window(schedule, at))
    queue_handoff(session, report=report, people=people, now=now)
    schedule_next_handoffs(session, schedules=[schedule], now=max(now, at))
