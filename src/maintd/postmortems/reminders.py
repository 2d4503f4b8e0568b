"""Reminders of action items: one chain of database timers per item, queued to the owner when due.

Each open item has a ``pm-action`` timer (maintd.timers) ``remind_before`` the end
of its due day (UTC), and one at that end; the overdue one queues a reminder and
schedules the next, every ``overdue_every``, at most ``overdue_reminders`` times.
A new due date cancels the pending timers and sets new ones (keys are never
reused); a done or cancelled item's timers are cancelled, and a timer that still
fires for one (a race with the change) queues nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

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


@dataclass(frozen=True)
class Chain:
    """The reminders of items that have an owner and a due day: one timer ``remind_before`` the end
    of the due day, one when it ends, then one every ``overdue_every``, at most ``overdue_reminders``.

    Post-mortem action items use it, and so do review findings (maintd.reviews): ``kind`` is the
    timer kind, ``prefix`` makes an item's timer subject, ``key`` names the item in the payloads.
    """

    kind: str
    prefix: str
    key: str

    def subject(self, item_id: int) -> str:
        return f"{self.prefix}:{item_id}"

    def schedule(
        self, session: Session, *, item_id: int, due_on: date, settings: PostmortemSettings, now: datetime
    ) -> int:
        """Set the item's first timers (the early reminder, the first overdue one); how many were added."""
        end = deadline(due_on)
        added = 0
        # A timer's key is never reused, even cancelled: each setting of an item's timers has a key of
        # its own (the due date and a serial), so moving a due date away and back sets timers again.
        series = f"{due_on.isoformat()}.s{len(timers.of_subject(session, self.subject(item_id)))}"
        if settings.remind_before > timedelta(0):
            at = max(now, end - settings.remind_before)
            added += self.timer(session, item_id=item_id, due_on=due_on, series=series, n=0, at=at, now=now)
        if settings.overdue_reminders > 0:
            added += self.timer(session, item_id=item_id, due_on=due_on, series=series, n=1, at=end, now=now)
        return added

    def timer(
        self,
        session: Session,
        *,
        item_id: int,
        due_on: date,
        series: str,
        n: int,
        at: datetime,
        now: datetime,
    ) -> bool:
        """Timer ``n`` of a series: 0 the early reminder, 1... the overdue ones."""
        payload: dict[str, object] = {self.key: item_id, "due_on": due_on.isoformat(), "series": series}
        if n:
            payload["n"] = n
        step = f"{series}.{OVERDUE}.{n}" if n else f"{series}.{BEFORE}"
        return timers.schedule(
            session,
            kind=self.kind,
            subject=self.subject(item_id),
            step=step,
            due_at=at,
            payload=payload,
            now=now,
        )

    def cancel(self, session: Session, *, item_id: int, now: datetime) -> int:
        return timers.cancel(session, subject=self.subject(item_id), kind=self.kind, now=now)

    def next_overdue(
        self, session: Session, timer: TimerRow, *, due_on: date, settings: PostmortemSettings, now: datetime
    ) -> datetime | None:
        """After overdue reminder ``n`` fired: set reminder ``n + 1`` unless that is one too many; when."""
        n = int(timer.payload.get("n", 0))
        if not n or n >= settings.overdue_reminders:
            return None
        at = max(deadline(due_on) + settings.overdue_every * n, now)
        item_id = int(timer.payload[self.key])
        self.timer(session, item_id=item_id, due_on=due_on, series=str(timer.payload["series"]), n=n + 1,
                   at=at, now=now)  # fmt: skip
        return at

    def still_due(self, session: Session, model: type[Any], timer: TimerRow) -> Any | None:
        """The open item ``timer`` was set for; None once done, cancelled or moved since (its own
        timers say the rest)."""
        item = session.get(model, int(timer.payload[self.key]))
        if (
            item is None
            or item.status != ActionStatus.open.value
            or item.due_on.isoformat() != timer.payload.get("due_on")
        ):
            return None
        return item

    def remind(
        self,
        session: Session,
        timer: TimerRow,
        item: Any,
        *,
        people: dict[str, Person],
        message: Callable[[str], Message],
        incident_id: int | None,
        settings: PostmortemSettings,
        event: tuple[str, str],
        now: datetime,
    ) -> None:
        """Queue the reminder ``timer`` stands for to the item's owner (``message`` of its state);
        after an overdue one, set the next; record ``event`` (kind, subject)."""
        state = OVERDUE if int(timer.payload.get("n", 0)) else REMINDER
        enqueue(
            session,
            subject=self.subject(item.id),
            incident_id=incident_id,
            recipient=recipient(people, item.owner),
            state=state,
            step=timer.step,
            message=message(state),
            now=now,
        )
        payload: dict[str, object] = {
            self.key: item.id,
            "owner": item.owner,
            "reminder": state,
            "step": timer.step,
        }
        nxt = self.next_overdue(session, timer, due_on=item.due_on, settings=settings, now=now)
        if nxt is not None:
            payload["next"] = nxt.isoformat()
        kind, subject_ = event
        append(session, Event(kind, subject_, now, SYSTEM, payload))


def recipient(people: dict[str, Person], name: str) -> Recipient:
    """A person of the plan by name, with their notification channels (none once gone from the plan)."""
    person = people.get(name)
    return Recipient(f"person:{name}", list(person.notify) if person else [])


ACTIONS = Chain(KIND, "pm-action", "action")


def subject(action_id: int) -> str:
    return ACTIONS.subject(action_id)


def deadline(due_on: date) -> datetime:
    """The end of the due day, UTC: done before this instant is done on time."""
    return datetime.combine(due_on + timedelta(days=1), time(0), tzinfo=UTC)


def schedule(
    session: Session, item: PostmortemActionRow, *, settings: PostmortemSettings, now: datetime
) -> int:
    """Set the item's first timers (the early reminder, the first overdue one); how many were added."""
    return ACTIONS.schedule(session, item_id=item.id, due_on=item.due_on, settings=settings, now=now)


def cancel(session: Session, item: PostmortemActionRow, *, now: datetime) -> int:
    return ACTIONS.cancel(session, item_id=item.id, now=now)


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
    item = ACTIONS.still_due(session, PostmortemActionRow, timer)
    if item is None:
        return
    ACTIONS.remind(
        session, timer, item, people=people, incident_id=item.incident_id, settings=settings, now=now,
        message=lambda state: message(item, state, now, base_url=base_url),
        event=("postmortem.action.reminded", f"incident:{item.incident_id}"),
    )  # fmt: skip


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
