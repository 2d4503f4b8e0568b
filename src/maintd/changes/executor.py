"""A change's steps, each run for one due timer of kind ``change``:

- ``execute.N``: snapshot, pre-check (every watched check ok, else refused: back to
  approved, nothing changed), apply to the canary targets, check, apply to the rest,
  then watch.
- ``watch.N.I``: run the watched checks; a critical result, or more unknown results in
  the watch than the type tolerates, starts the rollback; the last round completes it.
- ``rollback.N``: the rollback command on every applied target (last applied first),
  the checks again, then rolled back (healthy) or failed.

Each command's outcome is committed as it finishes (an event, and the targets applied so
far), and the timer is claimed in the transaction that records the step's end. A step a
crash interrupted runs again: what was applied is not snapshotted or pre-checked again,
and targets applied already are skipped, so procedures' commands should be idempotent.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from maintd import timers
from maintd.changes import commands, notices, orders, service
from maintd.changes.health import Health, HealthChecks
from maintd.changes.model import ChangeState, subject
from maintd.checks.base import Status
from maintd.clock import Clock
from maintd.plan.changes import Procedure
from maintd.plan.loader import LoadedPlan
from maintd.store.db import Store
from maintd.store.events import Event, append
from maintd.store.models import ChangeRow

log = logging.getLogger(__name__)
ACTOR = "changes"


@dataclass(frozen=True)
class Step:
    timer_id: int
    change_id: int
    name: str  # execute.N, watch.N.I, rollback.N
    due_at: datetime


class Executor:
    def __init__(
        self,
        *,
        store: Store,
        clock: Clock,
        checks: HealthChecks,
        owner: str,
        base_url: str = "",
    ) -> None:
        self.store = store
        self.clock = clock
        self.checks = checks
        self.owner = owner
        self.base_url = base_url

    async def run(self, loaded: LoadedPlan, step: Step) -> None:
        kind = step.name.split(".", 1)[0]
        if kind == "execute":
            await self.execute(loaded, step)
        elif kind == "watch":
            await self.watch(loaded, step)
        elif kind == "rollback":
            await self.rollback(loaded, step)
        else:
            with self.store.write() as session:
                timers.claim(session, step.timer_id, self.clock.now(), self.owner)
            log.error("change %s: unknown step %r; dropped", step.change_id, step.name)

    # -- execute ------------------------------------------------------------------------------

    async def execute(self, loaded: LoadedPlan, step: Step) -> None:
        row = self._row(step.change_id)
        if row.state != ChangeState.executing.value:
            return self._drop(step)
        try:
            procedure = loaded.plan.changes.procedure(row.procedure)
        except KeyError:
            return self._refuse(loaded, step, f"procedure {row.procedure!r} is no longer in the plan")
        values = {**{k: str(v) for k, v in row.params.items()}, "change": str(row.id), "type": row.type}
        if not row.applied and not row.canary_checked:
            refused = await self._prepare(loaded, row, procedure, values)
            if refused:
                return self._refuse(loaded, step, refused)
        canary = [t for t in row.targets if t in row.canary]
        order = canary + [t for t in row.targets if t not in row.canary]
        for target in order:
            if target in row.applied:
                continue
            if canary and target not in canary and not row.canary_checked:
                bad = await self._canary_check(loaded, row)
                if bad:
                    return self._start_rollback(step, f"canary: {bad}")
            result = await self._command(procedure, procedure.apply, {**values, "target": target}, loaded)
            row = self._applied(row.id, target, target in canary, result)
            if not result.ok:
                return self._start_rollback(step, f"applying to {target} failed: {result.summary()}")
        self._start_watch(loaded, step)

    async def _prepare(
        self, loaded: LoadedPlan, row: ChangeRow, procedure: Procedure, values: dict[str, str]
    ) -> str | None:
        """Snapshot and pre-check; why the change may not start, or None."""
        snapshot = procedure.snapshot or loaded.plan.changes.snapshot
        if snapshot and row.snapshot is None:
            result = await self._command(procedure, snapshot, values, loaded)
            with self.store.write() as session:
                fresh = service.load(session, row.id, for_update=True)
                append(
                    session,
                    Event("change.snapshot", subject(row.id), self.clock.now(), ACTOR, result.record()),
                )
                if result.ok:
                    fresh.snapshot = result.output
            if not result.ok:
                return f"the snapshot failed: {result.summary()}"
        health = await self.checks.run(loaded, row.checks, actor=f"change:{row.id}")
        bad = [h for h in health if h.status is not Status.ok]
        self._event(row.id, "change.prechecked", {"results": [h.record() for h in health], "ok": not bad})
        if bad:
            return "the pre-check found " + "; ".join(h.describe() for h in bad[:5])
        return None

    async def _canary_check(self, loaded: LoadedPlan, row: ChangeRow) -> str | None:
        health = await self.checks.run(loaded, row.checks, actor=f"change:{row.id}")
        bad = [h for h in health if h.status in (Status.critical, Status.unknown)]
        with self.store.write() as session:
            fresh = service.load(session, row.id, for_update=True)
            fresh.canary_checked = True
            payload = {"results": [h.record() for h in health], "ok": not bad, "canary": row.canary}
            append(session, Event("change.canary_checked", subject(row.id), self.clock.now(), ACTOR, payload))
        row.canary_checked = True
        return "; ".join(h.describe() for h in bad[:5]) or None

    def _applied(
        self, change_id: int, target: str, canary: bool, result: commands.CommandResult
    ) -> ChangeRow:
        """Record one apply; a failed one counts as applied too (half-applied: the rollback undoes it)."""
        with self.store.write() as session:
            row = service.load(session, change_id, for_update=True)
            row.applied = [*row.applied, target]
            payload = {"target": target, "canary": canary, "ok": result.ok, **result.record()}
            append(session, Event("change.applied", subject(change_id), self.clock.now(), ACTOR, payload))
            session.flush()
            session.expunge(row)
        return row

    def _refuse(self, loaded: LoadedPlan, step: Step, reason: str) -> None:
        """Nothing changed: back to approved, the requester told why."""
        with self.store.write() as session:
            if not self._claim(session, step):
                return
            row = service.load(session, step.change_id, for_update=True)
            row.outcome = f"refused: {reason}"
            row.snapshot = None
            service.move(session, row, ChangeState.approved, ACTOR, self.clock.now(), refused=reason)
            self._tell(session, loaded, row, "refused", step.name)

    def _start_watch(self, loaded: LoadedPlan, step: Step) -> None:
        now = self.clock.now()
        with self.store.write() as session:
            if not self._claim(session, step):
                return
            row = service.load(session, step.change_id, for_update=True)
            watch = loaded.plan.changes.watch_of(service.change_type(loaded.plan.changes, row))
            row.watch_started_at, row.watch_until, row.errors = now, now + watch.window, 0
            service.move(
                session,
                row,
                ChangeState.watching,
                ACTOR,
                now,
                applied=row.applied,
                until=row.watch_until.isoformat(),
                checks=row.checks,
            )
            first = min(now + watch.interval, row.watch_until)
            orders.schedule_step(session, row, f"watch.{row.executions}.1", first, now)

    def _start_rollback(self, step: Step, reason: str) -> None:
        with self.store.write() as session:
            if not self._claim(session, step):
                return
            row = service.load(session, step.change_id, for_update=True)
            orders.start_rollback(session, row, actor=ACTOR, now=self.clock.now(), reason=reason)

    # -- watch ----------------------------------------------------------------------------------

    async def watch(self, loaded: LoadedPlan, step: Step) -> None:
        row = self._row(step.change_id)
        if row.state != ChangeState.watching.value:
            return self._drop(step)
        health = await self.checks.run(loaded, row.checks, actor=f"change:{row.id}")
        now = self.clock.now()
        with self.store.write() as session:
            if not self._claim(session, step):
                return
            row = service.load(session, step.change_id, for_update=True)
            if row.state != ChangeState.watching.value:
                return  # rolled back by hand while the checks ran
            watch = loaded.plan.changes.watch_of(service.change_type(loaded.plan.changes, row))
            row.errors += sum(h.status is Status.unknown for h in health)
            critical = [h for h in health if h.status is Status.critical]
            payload = {"round": step.name, "results": [h.record() for h in health], "errors": row.errors}
            append(session, Event("change.checked", subject(row.id), now, ACTOR, payload))
            if critical:
                reason = "; ".join(h.describe() for h in critical[:5])
                orders.start_rollback(session, row, actor=ACTOR, now=now, reason=reason)
            elif row.errors > watch.max_errors:
                reason = (
                    f"{row.errors} unknown results in the watch, more than max_errors ({watch.max_errors})"
                )
                orders.start_rollback(session, row, actor=ACTOR, now=now, reason=reason)
            elif row.watch_until is not None and step.due_at >= row.watch_until:
                row.finished_at = now
                row.outcome = f"healthy through the {watch.window} watch"
                service.move(session, row, ChangeState.completed, ACTOR, now, applied=row.applied)
                self._tell(session, loaded, row, "completed", step.name)
            else:
                _, execution, number = step.name.split(".")
                assert row.watch_started_at is not None and row.watch_until is not None
                due = min(row.watch_started_at + watch.interval * (int(number) + 1), row.watch_until)
                orders.schedule_step(session, row, f"watch.{execution}.{int(number) + 1}", due, now)

    # -- rollback ------------------------------------------------------------------------------

    async def rollback(self, loaded: LoadedPlan, step: Step) -> None:
        row = self._row(step.change_id)
        if row.state != ChangeState.rolling_back.value:
            return self._drop(step)
        failures: list[str] = []
        try:
            procedure: Procedure | None = loaded.plan.changes.procedure(row.procedure)
        except KeyError:
            procedure, failures = None, [f"procedure {row.procedure!r} is no longer in the plan"]
        values = {**{k: str(v) for k, v in row.params.items()}, "change": str(row.id), "type": row.type}
        for target in reversed(row.applied if procedure else []):
            assert procedure is not None
            result = await self._command(procedure, procedure.rollback, {**values, "target": target}, loaded)
            with self.store.write() as session:
                fresh = service.load(session, row.id, for_update=True)
                if result.ok:
                    fresh.applied = [t for t in fresh.applied if t != target]
                payload = {"target": target, "ok": result.ok, **result.record()}
                append(
                    session,
                    Event("change.rollback_applied", subject(row.id), self.clock.now(), ACTOR, payload),
                )
            if not result.ok:
                failures.append(f"rollback on {target}: {result.summary()}")
        health = await self.checks.run(loaded, row.checks, actor=f"change:{row.id}")
        self._settle(loaded, step, failures, health)

    def _settle(self, loaded: LoadedPlan, step: Step, failures: list[str], health: list[Health]) -> None:
        now = self.clock.now()
        bad = [h for h in health if h.status is not Status.ok]
        with self.store.write() as session:
            if not self._claim(session, step):
                return
            row = service.load(session, step.change_id, for_update=True)
            payload = {"results": [h.record() for h in health], "ok": not bad}
            append(session, Event("change.rechecked", subject(row.id), now, ACTOR, payload))
            row.finished_at = now
            reason = row.outcome or "rolled back"
            if failures or bad:
                still = "; ".join(failures + [h.describe() for h in bad[:5]])
                row.outcome = f"{reason}; after the rollback: {still}"
                service.move(session, row, ChangeState.failed, ACTOR, now, reason=reason, problems=still)
                self._tell(session, loaded, row, "failed", step.name)
            else:
                service.move(session, row, ChangeState.rolled_back, ACTOR, now, reason=reason)
                self._tell(session, loaded, row, "rolled_back", step.name)

    # -- helpers -------------------------------------------------------------------------------

    async def _command(
        self, procedure: Procedure, command: list[str], values: dict[str, str], loaded: LoadedPlan
    ) -> commands.CommandResult:
        try:
            argv = commands.render(command, values)
        except commands.CommandError as exc:
            return commands.CommandResult(list(command), None, "", 0.0, str(exc))
        limit = loaded.plan.changes.output_limit
        return await commands.run(argv, timeout=procedure.timeout, limit=limit)

    def _row(self, change_id: int) -> ChangeRow:
        with self.store.read() as session:
            row = service.load(session, change_id)
            session.expunge(row)
        return row

    def _claim(self, session: Session, step: Step) -> bool:
        return timers.claim(session, step.timer_id, self.clock.now(), self.owner)

    def _drop(self, step: Step) -> None:
        """A step whose change moved on (cancelled, rolled back by hand): nothing to do."""
        with self.store.write() as session:
            self._claim(session, step)

    def _event(self, change_id: int, kind: str, payload: dict[str, object]) -> None:
        with self.store.write() as session:
            append(session, Event(kind, subject(change_id), self.clock.now(), ACTOR, payload))

    def _tell(self, session: Session, loaded: LoadedPlan, row: ChangeRow, state: str, step: str) -> None:
        decisions = service.votes(session, row.id)
        notices.tell(
            session,
            row,
            decisions,
            state=state,
            step=step,
            people=loaded.plan.people,
            now=self.clock.now(),
            base_url=self.base_url,
        )
