"""Runs changes' due steps: the timers of kind ``change``, taken under a lease on the change.

A step runs commands and checks for minutes, too long for a timer handler's transaction,
so the timer stays pending while its step runs and is claimed in the transaction that
records the step's end (maintd.changes.executor). The lease (a conditional update of the
change's ``lease_until``) keeps a second maintd process off a change whose step is
running; a crashed process's lease runs out and its step runs again elsewhere. A restart
between steps (in the middle of a health watch) simply finds the next step's timer.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from maintd import timers
from maintd.changes.executor import Executor, Step
from maintd.changes.health import HealthChecks
from maintd.changes.model import KIND, SETTLED, ChangeState
from maintd.changes.proposals import draft_proposals
from maintd.clock import Clock
from maintd.plan.loader import LoadedPlan
from maintd.store.db import Store, rowcount
from maintd.store.models import ChangeRow, EventRow, TimerRow

log = logging.getLogger(__name__)

IDLE_WAKE = timedelta(seconds=2)  # look at the store at least this often (another process may add work)
FAILED_STEP_PAUSE = timedelta(seconds=30)  # a step that raised keeps its lease this long: no hot loop
MAX_ROUNDS = 50  # steps a run_due may chain at one instant (execute -> rollback -> ...)


class ChangeWorker:
    def __init__(
        self,
        *,
        store: Store,
        clock: Clock,
        checks: HealthChecks,
        owner: str,
        plan: Callable[[], LoadedPlan | None],
        base_url: str = "",
        on_queued: Callable[[], None] | None = None,
    ) -> None:
        self.store = store
        self.clock = clock
        self.owner = owner[:128]
        self.plan = plan
        self.on_queued = on_queued
        self.executor = Executor(store=store, clock=clock, checks=checks, owner=owner, base_url=base_url)
        self._wake: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._proposals_after: int | None = None  # the last event read for security scans' proposals

    async def run_due(self) -> list[Step]:
        """Run every step due now, each to its end, and those they make due now; the steps run."""
        done: list[Step] = []
        loaded = self.plan()
        if loaded is not None and loaded.plan.changes.security_updates is not None:
            await asyncio.to_thread(self.propose, loaded)
        for _ in range(MAX_ROUNDS):
            loaded = self.plan()
            if loaded is None:
                break
            steps = await self._take_shielded(loaded)
            if not steps:
                break
            await asyncio.gather(*(self._run(loaded, step) for step in steps))
            done += steps
        if done and self.on_queued is not None:
            self.on_queued()  # outcomes queue notices: deliver them now, not at the next poll
        return done

    async def run_until_settled(self, change_id: int) -> str:
        """Run this change's steps as they fall due until it settles or is refused (for a command
        without ``maintd serve``); its final state."""
        while True:
            await self.run_due()
            with self.store.read() as session:
                state = session.scalar(select(ChangeRow.state).where(ChangeRow.id == change_id))
                next_at = timers.next_due_at(session, kinds=[KIND])
            if state is None or ChangeState(state) in SETTLED or state == ChangeState.approved.value:
                return state or "missing"
            await self.clock.sleep_until(next_at or self.clock.now() + IDLE_WAKE)

    async def run_forever(self, stopping: asyncio.Event) -> None:
        """The engine's loop: run due steps, sleep until the next is due (or a wake())."""
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        while not stopping.is_set():
            self._wake.clear()
            ran: list[Step] = []
            try:
                ran = await self.run_due()
                next_at = await asyncio.to_thread(self._next_due)
            except Exception:
                log.exception("running change steps failed; retrying")
                next_at = None
            now = self.clock.now()
            wake_at = now + IDLE_WAKE
            if next_at is not None and (next_at > now or ran):
                wake_at = min(next_at, wake_at)  # a due step leased by another process: wait
            await self.clock.sleep_until(wake_at, self._wake)

    def wake(self) -> None:
        """A change was asked to execute or roll back: look now; safe from any thread."""
        loop, event = self._loop, self._wake
        if loop is None or event is None:
            return
        with contextlib.suppress(RuntimeError):  # the loop is closed: nothing to wake
            loop.call_soon_threadsafe(event.set)

    def propose(self, loaded: LoadedPlan) -> list[int]:
        """Draft change requests for the patch updates security scans proposed since the last look."""
        if self._proposals_after is not None:
            with self.store.read() as session:  # the common case, nothing new: no write transaction
                newer = select(EventRow.id).where(
                    EventRow.id > self._proposals_after, EventRow.kind == "action.applied"
                )
                if session.scalar(newer.limit(1)) is None:
                    return []
        with self.store.write() as session:
            drafted, self._proposals_after = draft_proposals(
                session, plan=loaded.plan, after_id=self._proposals_after, now=self.clock.now()
            )
        return drafted

    def _next_due(self) -> datetime | None:
        with self.store.read() as session:
            return timers.next_due_at(session, kinds=[KIND])

    async def _take_shielded(self, loaded: LoadedPlan) -> list[Step]:
        """``_take`` in a thread; cancelled meanwhile (shutdown), the leases it took are given back
        rather than left to run out (the next start would wait for them)."""
        taking = asyncio.ensure_future(asyncio.to_thread(self._take, loaded, self.clock.now()))
        try:
            return await asyncio.shield(taking)
        except asyncio.CancelledError:
            with contextlib.suppress(Exception):
                for step in await taking:
                    await asyncio.to_thread(self._release, step.change_id, None)
            raise

    def _take(self, loaded: LoadedPlan, now: datetime) -> list[Step]:
        """The earliest due step of each change this process can lease."""
        due = self._next_due()  # a read first: no write transaction every poll when nothing is due
        if due is None or due > now:
            return []
        with self.store.write() as session:
            ids = timers.due(session, now, kinds=[KIND], limit=100)
            rows = session.scalars(
                select(TimerRow).where(TimerRow.id.in_(ids)).order_by(TimerRow.due_at, TimerRow.id)
            ).all()
            taken: list[Step] = []
            for timer in rows:
                change_id = int(timer.payload["change"])
                if any(s.change_id == change_id for s in taken):
                    continue
                if self._lease(session, change_id, now, now + self._lease_for(loaded, change_id, session)):
                    taken.append(Step(timer.id, change_id, timer.step, timer.due_at))
        return taken

    def _lease(self, session: Session, change_id: int, now: datetime, until: datetime) -> bool:
        done = session.execute(
            update(ChangeRow)
            .where(
                ChangeRow.id == change_id, or_(ChangeRow.lease_until.is_(None), ChangeRow.lease_until < now)
            )
            .values(lease_owner=self.owner, lease_until=until)
            .execution_options(synchronize_session=False)
        )
        return rowcount(done) == 1

    def _lease_for(self, loaded: LoadedPlan, change_id: int, session: Session) -> timedelta:
        """Long enough for the step's commands and checks, so a lease never runs out under a live step."""
        row = session.get(ChangeRow, change_id)
        targets = len(row.targets) if row else 1
        try:
            command = loaded.plan.changes.procedure(row.procedure).timeout if row else timedelta(minutes=10)
        except KeyError:
            command = timedelta(minutes=10)
        checks = max((t.timeout for t in loaded.plan.tasks), default=timedelta(minutes=5))
        return command * (targets + 1) + checks * 3 + timedelta(minutes=1)

    async def _run(self, loaded: LoadedPlan, step: Step) -> None:
        hold: timedelta | None = None
        try:
            await self.executor.run(loaded, step)
        except Exception:
            log.exception(
                "change %s step %s failed; retrying in %s", step.change_id, step.name, FAILED_STEP_PAUSE
            )
            hold = FAILED_STEP_PAUSE
        finally:
            # Cancelled (shutdown) too: release at once, so the next start need not wait for the lease.
            await asyncio.shield(asyncio.to_thread(self._release, step.change_id, hold))

    def _release(self, change_id: int, hold: timedelta | None) -> None:
        until = self.clock.now() + hold if hold else None
        with self.store.write() as session:
            session.execute(
                update(ChangeRow)
                .where(ChangeRow.id == change_id, ChangeRow.lease_owner == self.owner)
                .values(lease_owner=None if until is None else self.owner, lease_until=until)
                .execution_options(synchronize_session=False)
            )
