"""Action items: an owner, a due day, reminders on a ``Chain``, done on time or late.

Post-mortem action items and review findings (maintd.reviews) are both; the rules for
adding, changing and finishing one are here once, each kind naming its events, its
errors and its reminder chain.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Protocol, TypeVar

from sqlalchemy.orm import Session

from maintd.plan.postmortems import PostmortemSettings
from maintd.postmortems.model import ActionStatus
from maintd.postmortems.reminders import Chain, deadline
from maintd.store.events import Event, append


class Item(Protocol):
    id: int
    title: str
    owner: str
    due_on: date
    status: str
    completed_at: datetime | None
    on_time: bool | None


ItemT = TypeVar("ItemT", bound=Item)


@dataclass(frozen=True)
class Items:
    chain: Chain  # the reminders
    noun: str  # in messages: "post-mortem action 3 is done"
    a_title: str  # "an action item needs a title"
    events: str  # event kinds: f"{events}.added|changed|completed|cancelled"
    error: type[Exception]  # what a refusal raises
    subject: Callable[[Any], str]  # the events' subject, from the row
    title_max: int = 500

    def check_new(self, title: str, owner: str, due_on: date, people: Collection[str], now: datetime) -> str:
        """The item's title, stripped, once title, owner and due day are valid."""
        title = self.title(title)
        self.check_owner(owner, people)
        self.check_due(due_on, now)
        return title

    def added(
        self, session: Session, row: ItemT, settings: PostmortemSettings, actor: str, now: datetime
    ) -> ItemT:
        """After the new row is flushed: its reminders and its event."""
        self.chain.schedule(session, item_id=row.id, due_on=row.due_on, settings=settings, now=now)
        payload = {
            self.chain.key: row.id,
            "title": row.title,
            "owner": row.owner,
            "due_on": row.due_on.isoformat(),
        }
        self.append(session, row, "added", actor, now, payload)
        return row

    def change(
        self,
        session: Session,
        row: ItemT,
        *,
        people: Collection[str],
        settings: PostmortemSettings,
        actor: str,
        now: datetime,
        title: str | None = None,
        owner: str | None = None,
        due_on: date | None = None,
        status: ActionStatus | None = None,
    ) -> ItemT:
        """Change what is given; a new due date re-sets the reminders; done and cancelled are final."""
        if row.status != ActionStatus.open:
            raise self.error(f"{self.noun} {row.id} is {row.status}; it cannot change any more")
        changed: dict[str, object] = {}
        if title is not None and self.title(title) != row.title:
            row.title = changed["title"] = self.title(title)
        if owner is not None and owner != row.owner:
            self.check_owner(owner, people)
            row.owner = changed["owner"] = owner
        if due_on is not None and due_on != row.due_on:
            self.check_due(due_on, now)
            row.due_on = due_on
            changed["due_on"] = due_on.isoformat()
        if status is not None and status is not ActionStatus.open:
            return self._finish(session, row, status, actor, now, changed)
        if not changed:
            raise self.error(f"nothing to change: {self.noun} {row.id} is like that already")
        if "due_on" in changed:
            self.chain.cancel(session, item_id=row.id, now=now)
            self.chain.schedule(session, item_id=row.id, due_on=row.due_on, settings=settings, now=now)
        self.append(session, row, "changed", actor, now, {self.chain.key: row.id, **changed})
        return row

    def _finish(
        self,
        session: Session,
        row: ItemT,
        status: ActionStatus,
        actor: str,
        now: datetime,
        changed: dict[str, object],
    ) -> ItemT:
        row.status = status.value
        self.chain.cancel(session, item_id=row.id, now=now)
        payload: dict[str, object] = {
            self.chain.key: row.id,
            "title": row.title,
            "owner": row.owner,
            **changed,
        }
        payload["due_on"] = row.due_on.isoformat()
        if status is ActionStatus.done:
            row.completed_at = now
            row.on_time = payload["on_time"] = now < deadline(row.due_on)
            self.append(session, row, "completed", actor, now, payload)
        else:
            self.append(session, row, "cancelled", actor, now, payload)
        return row

    def append(
        self, session: Session, row: Item, verb: str, actor: str, now: datetime, payload: dict[str, object]
    ) -> None:
        append(session, Event(f"{self.events}.{verb}", self.subject(row), now, actor, payload))

    def title(self, title: str) -> str:
        title = title.strip()
        if not title:
            raise self.error(f"{self.a_title} needs a title")
        if len(title) > self.title_max:
            raise self.error(
                f"{self.a_title}'s title is at most {self.title_max} characters, not {len(title)}"
            )
        return title

    def check_owner(self, owner: str, people: Collection[str]) -> None:
        if owner not in people:
            known = ", ".join(sorted(people)) or "none: the active plan has no people"
            raise self.error(f"{owner!r} is not a person of the active plan (people: {known})")

    def check_due(self, due_on: date, now: datetime) -> None:
        if due_on < now.date():
            raise self.error(
                f"the due date {due_on.isoformat()} has passed (today is {now.date().isoformat()}, UTC)"
            )
