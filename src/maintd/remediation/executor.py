"""Runs queued remediations: claim, act, verify, record.

A queued row is claimed with a conditional update to ``running`` (``... WHERE id = :id AND
state = 'queued'``); the unique index on running targets refuses a second running execution
on the same target, whichever process tries, and that row simply waits for a later pass.
The action runs outside any transaction; its end is recorded in one (``outcome.finish``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from pydantic import ValidationError
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from maintd.checks.base import ProcessTracker, Resources, Status
from maintd.clock import Clock
from maintd.plan.models import Plan, Target
from maintd.plan.playbooks import Playbook
from maintd.remediation import outcome
from maintd.remediation.base import ActionContext, ActionResult, Refused, RunTask, render
from maintd.remediation.circuits import StoreCircuits
from maintd.remediation.guardrails import State
from maintd.remediation.intake import anything_new, take
from maintd.remediation.registry import ActionRegistry
from maintd.store.db import Store, rowcount
from maintd.store.models import RemediationRow

log = logging.getLogger(__name__)

CLAIM_BATCH = 16  # executions started per pass; they run concurrently
_CLAIMABLE = (State.queued.value, State.running.value)  # running: it may have been abandoned
GRACE = timedelta(minutes=5)  # past its time limits, a running execution's process is taken as gone


@dataclass(frozen=True)
class Claimed:
    id: int
    playbook: str
    target: str
    labels: dict[str, str]
    dry_run: bool


class Remediator:
    """The engine's remediation worker: ``intake`` in the scheduler's tick, ``run_pending`` after it."""

    def __init__(
        self,
        *,
        store: Store,
        clock: Clock,
        owner: str,
        actions: ActionRegistry,
        plan: Callable[[], Plan | None],
        run_task: RunTask,
        on_change: Callable[[], None] = lambda: None,
        processes: ProcessTracker | None = None,
    ) -> None:
        self.store = store
        self.clock = clock
        self.owner = owner[:128]
        self.actions = actions
        self.plan = plan
        self.run_task = run_task
        self.on_change = on_change
        self.processes = processes
        self.resources = Resources()
        self.circuits = StoreCircuits(store, clock)
        self._draining: asyncio.Task[list[int]] | None = None

    def intake(self) -> int:
        """Decide about new firing alerts (sync: a write transaction); how many were queued to run."""
        plan = self.plan()
        if plan is None or not plan.playbooks:
            return 0
        with self.store.read() as session:
            if not anything_new(session):
                return 0
        queued = 0
        while True:
            with self.store.write() as session:
                taken = take(session, playbooks=plan.playbooks, actions=self.actions, now=self.clock.now())
            queued += taken.queued
            if not taken.more:
                return queued

    def kick(self) -> None:
        """Start draining queued executions in the background unless a drain is running (event loop)."""
        if self._draining is None or self._draining.done():
            self._draining = asyncio.create_task(self._drain(), name="maintd-remediation")

    async def _drain(self) -> list[int]:
        try:
            return await self.run_pending()
        except Exception:  # the database is down: the next tick kicks again
            log.exception("running queued remediations failed; retrying next tick")
            return []

    async def run_pending(self) -> list[int]:
        """Claim and execute queued remediations until none is claimable; their ids."""
        done: list[int] = []
        while True:
            claimed = await asyncio.to_thread(self._claim)
            if not claimed:
                return done
            results = await asyncio.gather(*(self._execute(c) for c in claimed), return_exceptions=True)
            for c, result in zip(claimed, results, strict=True):
                if isinstance(result, BaseException):
                    # Recording its end failed (the database?): the row stays running and is
                    # failed as abandoned once past its limits.
                    log.error("remediation %s could not be recorded: %r", c.id, result)
                else:
                    done.append(c.id)
            self.on_change()

    async def aclose(self, grace: float = 0.0) -> None:
        """Let a running pass finish for ``grace`` seconds, then stop it (its rows stay running
        and are failed as abandoned once past their limits: their actions may have acted)."""
        if self._draining is not None:
            await asyncio.wait([self._draining], timeout=grace)
            self._draining.cancel()
            await asyncio.gather(self._draining, return_exceptions=True)
        await self.resources.aclose()

    def _claim(self) -> list[Claimed]:
        now = self.clock.now()
        out: list[Claimed] = []
        with self.store.read() as session:  # an idle pass costs a read, not a write transaction
            waiting = select(RemediationRow.id).where(RemediationRow.state.in_(_CLAIMABLE)).limit(1)
            if session.scalar(waiting) is None:
                return out
        with self.store.write() as session:
            _fail_abandoned(session, self.plan(), now)
            ids = session.scalars(
                select(RemediationRow.id)
                .where(RemediationRow.state == State.queued.value)
                .order_by(RemediationRow.id)
                .limit(CLAIM_BATCH)
            ).all()
            for row_id in ids:
                if (row := _claim_one(session, row_id, now, self.owner)) is not None:
                    out.append(row)
        return out

    async def _execute(self, claimed: Claimed) -> None:
        plan = self.plan()
        playbook = next((p for p in plan.playbooks if p.name == claimed.playbook), None) if plan else None
        try:
            if playbook is None:
                raise Refused(f"playbook {claimed.playbook} is no longer in the plan")
            ended = await self._act(playbook, claimed, plan)
        except Refused as exc:
            reason = f"refused: {exc}"
            await self._write(lambda s: outcome.refused(s, claimed.id, reason, self.clock.now()))
            return
        await self._write(lambda s: outcome.finish(s, claimed.id, ended, playbook, self.clock.now()))

    async def _act(self, playbook: Playbook, claimed: Claimed, plan: Plan | None) -> outcome.Ended:
        kind = self.actions.get(playbook.action_kind)
        try:
            config = kind.config.model_validate(render(playbook.action.params, claimed.labels))
        except ValidationError as exc:
            raise Refused(
                f"the action's params are invalid for this alert: {exc.errors()[0]['msg']}"
            ) from None
        timeout = playbook.guardrails.timeout
        ctx = ActionContext(
            playbook=playbook.name,
            target=claimed.target,
            labels=claimed.labels,
            config=config,
            clock=self.clock,
            deadline=self.clock.now() + timeout,
            resources=self.resources,
            run_task=self.run_task,
            circuits=self.circuits,
            plan_target=_targets(plan),
            dry_run=claimed.dry_run,
            max_targets=playbook.guardrails.max_targets,
            processes=self.processes,
        )
        try:
            async with asyncio.timeout(timeout.total_seconds()):
                result = await kind.build(config).execute(ctx)
        except TimeoutError:
            result = ActionResult(False, f"{kind.name} did not finish within {timeout}")
        except Refused:
            raise
        except Exception as exc:  # a bug in an action must not take the engine down
            log.exception("remediation %s (%s) raised", claimed.id, kind.name)
            result = ActionResult(False, f"internal error in action {kind.name}: {exc!r}")
        changes = [c.as_json() for c in result.changes]
        if not result.ok or claimed.dry_run or not playbook.verify.enabled:
            return outcome.Ended(result.ok, result.output, changes)
        return await self._verify(playbook, claimed, result, changes)

    async def _verify(
        self, playbook: Playbook, claimed: Claimed, result: ActionResult, changes: list[dict[str, object]]
    ) -> outcome.Ended:
        """Run the failing check again: its status decides the outcome."""
        task = playbook.verify.task or claimed.labels.get("task")
        target = playbook.verify.target or claimed.labels.get("target")
        if not task or not target:
            skipped = f"{result.output}\nverification skipped: the alert names no task and target to re-run"
            return outcome.Ended(True, skipped, changes, verified="skipped")
        if playbook.verify.delay > timedelta(0):
            await self.clock.sleep_until(self.clock.now() + playbook.verify.delay)
        try:
            ran = await self.run_task(task, target)
        except Refused as exc:
            return outcome.Ended(False, f"{result.output}\nverification: {exc}", changes, verified="error")
        ok = ran.status is Status.ok
        first = ran.output.splitlines()[0] if ran.output else ""
        text = f"{result.output}\nverification: {task} on {target}: {ran.status.value} {first}".rstrip()
        return outcome.Ended(ok, text, changes, verified=ran.status.value, verify_run_id=ran.run_id)

    async def _write(self, work: Callable[[Session], None]) -> None:
        def run() -> None:
            with self.store.write() as session:
                work(session)

        await asyncio.to_thread(run)


def _claim_one(session: Session, row_id: int, now: datetime, owner: str) -> Claimed | None:
    try:
        with session.begin_nested():
            claimed = session.execute(
                update(RemediationRow)
                .where(RemediationRow.id == row_id, RemediationRow.state == State.queued.value)
                .values(state=State.running.value, started_at=now, owner=owner)
                .execution_options(synchronize_session=False)
            )
    except IntegrityError:
        return None  # another execution on that target is running: this one waits its turn
    if rowcount(claimed) != 1:
        return None
    row = session.get(RemediationRow, row_id, populate_existing=True)
    assert row is not None
    labels = {str(k): str(v) for k, v in row.labels.items()}
    return Claimed(row.id, row.playbook, row.target, labels, row.dry_run)


def _targets(plan: Plan | None) -> Callable[[str], Target]:
    def find(name: str) -> Target:
        if plan is None:
            raise KeyError(name)
        return plan.target(name)

    return find


def _fail_abandoned(session: Session, plan: Plan | None, now: datetime) -> None:
    """Executions still running well past their time limits: the process running them stopped
    (a crash, a kill). They fail, which escalates their incident, and free their target."""
    stale = session.scalars(
        select(RemediationRow).where(
            RemediationRow.state == State.running.value, RemediationRow.started_at < now - GRACE
        )
    ).all()
    for row in stale:
        playbook = next((p for p in plan.playbooks if p.name == row.playbook), None) if plan else None
        limit = _time_limit(playbook, plan, row.labels.get("task"))
        if row.started_at is None or now - row.started_at < limit:
            continue
        moved = session.execute(
            update(RemediationRow)
            .where(RemediationRow.id == row.id, RemediationRow.state == State.running.value)
            .values(state=State.failed.value)
            .execution_options(synchronize_session=False)
        )
        if rowcount(moved) == 1:
            why = f"interrupted: still running {now - row.started_at} after it started; {row.owner} stopped"
            outcome.finish(session, row.id, outcome.Ended(False, why), playbook, now)


def _time_limit(playbook: Playbook | None, plan: Plan | None, task: object) -> timedelta:
    """How long an execution may take: the action's timeout, the verification's delay and task."""
    if playbook is None:
        return GRACE
    limit = playbook.guardrails.timeout + playbook.verify.delay + GRACE
    name = playbook.verify.task or task
    if plan is not None and isinstance(name, str):
        limit += next((t.timeout for t in plan.tasks if t.name == name), timedelta(0))
    return limit
