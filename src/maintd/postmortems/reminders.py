"""Reminders of action items: one chain of database timers per item, queued to the owner when due.

Each open item has a ``pm-action`` timer (maintd.timers) ``remind_before`` the end
of its due day (UTC), and one at that end; the overdue one queues a reminder and
schedules the next, every ``overdue_every``, at most ``overdue_reminders`` times.
A new due date cancels the pending timers and sets new ones (keys are never
reused); a done or cancelled item's timers are cancelled, and a timer that still
fires for one (a race with the change) queues nothing.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy.orm import Session

from maintd import timers
from maintd.notify.message import Message
from maintd.notify.outbox import Recipient, enqueue
from maintd.plan.oncall import Person
from maintd.plan.postmortems import PostmortemSettings
from maintd.postmortems.model import ActionStatus
from maintd.store.events import SYSTEM, Event, append
from maintd.store.models import PostmortemActionRow, TimerRow

KIND = "pm-action"  # the timer kind
REMINDER, OVERDUE = "reminder", "overdue"  # notification states
BEFORE = "before"


def subject(action_id: int) -> str:
    return f"pm-action:{action_id}"


def deadline(due_on: date) -> datetime:
    """The end of the due day, UTC: done before this instant is done on time."""
    return datetime.combine(due_on + timedelta(days=1), time(0), tzinfo=UTC)


def schedule(
    session: Session, item: PostmortemActionRow, *, settings: PostmortemSettings, now: datetime
) -> int:
    """Set the item's first timers (the early reminder, the first overdue one); how many were added."""
    end = deadline(item.due_on)
    added = 0
    # A timer's key is never reused, even cancelled: each setting of an item's timers has a key of its
    # own (the due date and a serial), so moving a due date away and back sets timers again.
    series = f"{item.due_on.isoformat()}.s{len(timers.of_subject(session, subject(item.id)))}"
    payload = {"action": item.id, "due_on": item.due_on.isoformat(), "series": series}
    if settings.remind_before > timedelta(0):
        added += timers.schedule(
            session,
            kind=KIND,
            subject=subject(item.id),
            step=f"{series}.{BEFORE}",
            due_at=max(now, end - settings.remind_before),
            payload=payload,
            now=now,
        )
    if settings.overdue_reminders > 0:
        added += _overdue_timer(session, item, series, 1, end, now)
    return added


def cancel(session: Session, item: PostmortemActionRow, *, now: datetime) -> int:
    return timers.cancel(session, subject=subject(item.id), kind=KIND, now=now)


def _overdue_timer(
    session: Session, item: PostmortemActionRow, series: str, n: int, at: datetime, now: datetime
) -> bool:
    return timers.schedule(
        session,
        kind=KIND,
        subject=subject(item.id),
        step=f"{series}.{OVERDUE}.{n}",
        due_at=at,
        payload={"action": item.id, "due_on": item.due_on.isoformat(), "series": series, "n": n},
        now=now,
    )


def handlers(
    *, people: list[Person], settings: PostmortemSettings, base_url: str
) -> dict[str, timers.Handler]:
    """The ``pm-action`` timer kind, bound to a loaded plan's people and settings (the engine merges
    this into the handlers it gives maintd.timers.fire_due)."""
    by_name = {p.name: p for p in people}

    def fire(session: Session, timer: TimerRow, now: datetime) -> None:
        remind(session, timer, now, people=by_name, settings=settings, base_url=base_url)

    return {KIND: fire}


def remind(
    session: Session,
    timer: TimerRow,
    now: datetime,
    *,
    people: dict[str, Person],
    settings: PostmortemSettings,
    base_url: str,
) -> None:
    """Queue the reminder the timer stands for to the item's owner; after an overdue one, set the next."""
    item = session.get(PostmortemActionRow, int(timer.payload["action"]))
    if (
        item is None
        or item.status != ActionStatus.open.value
        or item.due_on.isoformat() != timer.payload.get("due_on")
    ):
        return  # done, cancelled or moved since the timer was set: its own timers say the rest
    n = int(timer.payload.get("n", 0))
    state = OVERDUE if n else REMINDER
    person = people.get(item.owner)
    recipient = Recipient(f"person:{item.owner}", list(person.notify) if person else [])
    enqueue(
        session,
        subject=subject(item.id),
        incident_id=item.incident_id,
        recipient=recipient,
        state=state,
        step=timer.step,
        message=message(item, state, now, base_url=base_url),
        now=now,
    )
    payload: dict[str, object] = {
        "action": item.id,
        "owner": item.owner,
        "reminder": state,
        "step": timer.step,
    }
    if n and n < settings.overdue_reminders:
        nxt = deadline(item.due_on) + settings.overdue_every * n
        _overdue_timer(session, item, str(timer.payload["series"]), n + 1, max(nxt, now), now)
        payload["next"] = max(nxt, now).isoformat()
    append(session, Event("postmortem.action.reminded", f"incident:{item.incident_id}", now, SYSTEM, payload))


def message(item: PostmortemActionRow, state: str, now: datetime, *, base_url: str) -> Message:
    due = item.due_on.isoformat()
    if state == OVERDUE:
        late = (now - deadline(item.due_on)).days
        when = f"overdue: it was due {due}" + (f" ({late} day{'s' if late != 1 else ''} ago)" if late else "")
    else:
        when = f"due by the end of {due} (UTC)"
    return Message(
        title=f"post-mortem action {item.id}: {item.title}",
        summary=f"{item.title}: {when}. Owner: {item.owner}.",
        state=state,
        incident_id=item.incident_id,
        url=f"{base_url.rstrip('/')}/api/v1/postmortems/{item.incident_id}",
        details=[f"When it is done: maintd postmortem action done {item.id}"],
    )
