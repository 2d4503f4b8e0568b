"""Firing the store's timers: escalation steps, handoffs, reminders, review openings.

Each timer fires exactly once across processes (``timers.fire_due``'s conditional claim);
the pages the handlers queue are leased in the firing transaction and handed to the
dispatcher once it commits, so a page is spared a second transaction and a thread hop.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator
from datetime import datetime

from sqlalchemy import event
from sqlalchemy.orm import Session

from maintd import timers
from maintd.incidents import escalation
from maintd.incidents.recipients import Roster
from maintd.lifecycle import reminders as lifecycle_reminders
from maintd.notify.dispatcher import Dispatcher, Job, Leased
from maintd.oncall import handoff_delivery
from maintd.plan.loader import LoadedPlan
from maintd.postmortems import reminders as postmortem_reminders
from maintd.reviews import reminders as review_reminders
from maintd.store.db import Store

log = logging.getLogger(__name__)

TIMER_BATCH = 500


class TimerFiring:
    def __init__(
        self,
        *,
        store: Store,
        owner: str,
        dispatcher: Dispatcher | None,
        base_url: str,
        notify: Callable[[], None],
        wake: Callable[[], None] = lambda: None,
    ) -> None:
        self.store = store
        self.owner = owner
        self.dispatcher = dispatcher  # None: pages are queued for other processes to send
        self.base_url = base_url
        self.notify = notify  # wakes the dispatcher for pages left unleased
        self.wake = wake  # wakes the scheduler loop for timers left to it
        self._handlers: tuple[LoadedPlan, dict[str, timers.Handler]] | None = None

    def handlers(self, loaded: LoadedPlan) -> dict[str, timers.Handler]:
        """The handler of each timer kind, bound to ``loaded``'s people, schedules and channels."""
        if self._handlers is None or self._handlers[0] is not loaded:
            plan = loaded.plan
            handlers = escalation.handlers(Roster.of(plan), base_url=self.base_url)
            handlers.update(handoff_delivery.handlers(people=plan.people, schedules=plan.schedules))
            handlers.update(  # post-mortem action items remind their owners
                postmortem_reminders.handlers(
                    people=plan.people, settings=plan.postmortems, base_url=self.base_url
                )
            )
            # lifecycle: document reviews, trainings due, end-of-life notices
            handlers.update(lifecycle_reminders.handlers(plan, base_url=self.base_url))
            # recurring reviews: open each period's, remind findings' owners
            handlers.update(review_reminders.handlers(plan, base_url=self.base_url))
            self._handlers = (loaded, handlers)
            if self.dispatcher is not None:  # the plan's channels, ready before their first page
                urls = [rule.url for person in plan.people for rule in person.notify]
                self.dispatcher.prepare(urls + [channel.url for channel in plan.channels])
        return self._handlers[1]

    def fire(self, now: datetime, loaded: LoadedPlan) -> tuple[datetime | None, bool]:
        """Fire due timers: the next due time (``now`` when a full batch says more may be due) and
        whether the pages they queued were leased here.

        A failure must not stop the scheduling: it is logged and tried again next tick.
        """
        handlers = self.handlers(loaded)
        leased = False
        try:
            jobs: list[Job] = []
            more = False
            with self.store.write() as session:
                fired = timers.fire_due(session, now, owner=self.owner, handlers=handlers, limit=TIMER_BATCH)
                if fired and self.dispatcher is not None:
                    # Escalation steps and handoffs queue pages: lease them in this transaction.
                    jobs, more = self.dispatcher.claim_queued(session, now)
                    leased = True
                next_at = (
                    now if len(fired) >= TIMER_BATCH else timers.next_due_at(session, kinds=list(handlers))
                )
            if self.dispatcher is not None:
                self.dispatcher.hand_over(jobs)
            if more:
                self.notify()
            return next_at, leased
        except Exception:
            log.exception("firing timers failed; retrying next tick")
            return None, leased

    @contextlib.contextmanager
    def in_place(self, session: Session, now: datetime, loaded: LoadedPlan) -> Iterator[None]:
        """Around the block of an alert's transaction that may open incidents: their timers due at
        ``now`` (a first step with ``group_wait: 0``) are inserted already claimed and fired right
        after the block, their pages sent once the transaction commits; any thread.

        Exactly once, as in a tick, without a tick's SELECT of due timers, its claiming UPDATE and
        the dispatcher's claim of the pages (leased by their INSERT: ``Dispatcher.leasing_in_place``).
        A failure is logged, undone (a savepoint) and the timers are put back pending for the
        scheduler loop, never failing the caller's transaction.
        """
        handlers = self.handlers(loaded)
        with timers.claiming_in_place(session, owner=self.owner, kinds=list(handlers), now=now) as rows:
            yield
        if not rows:
            return
        dispatcher = self.dispatcher
        leasing: contextlib.AbstractContextManager[Leased] = (
            dispatcher.leasing_in_place(session, now)
            if dispatcher is not None
            else contextlib.nullcontext(Leased())
        )
        try:
            # The savepoint flushes what the block added first (the new incidents); the pages the
            # steps queue are leased by their own INSERT.
            with session.begin_nested(), leasing as leased:
                for timer in sorted(rows, key=lambda t: (t.due_at, t.id)):
                    handlers[timer.kind](session, timer, now)
        except Exception:
            log.exception("firing timers in the caller's transaction failed; the scheduler loop will")
            timers.unclaim(session, rows)  # should this fail, the caller's transaction fails: nothing lost
            event.listen(session, "after_commit", lambda _s: self.wake(), once=True)
            return
        self._on_commit(session, leased.jobs, leased.more)

    def _on_commit(self, session: Session, jobs: list[Job], more: bool) -> None:
        """Hand ``jobs`` (leased in the session's transaction) to the dispatcher once it commits."""
        dispatcher = self.dispatcher

        def committed(_session: Session) -> None:
            if dispatcher is not None:
                dispatcher.hand_over(jobs)
            if more:  # pages beyond the free sends, or leased by nobody (no loop running)
                self.notify()

        def rolled_back(_session: Session) -> None:  # the leases went with the rollback
            if event.contains(session, "after_commit", committed):
                event.remove(session, "after_commit", committed)

        event.listen(session, "after_commit", committed, once=True)
        event.listen(session, "after_rollback", rolled_back, once=True)
