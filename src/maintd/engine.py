"""The engine: plan → schedules → claims → runner, in one process.

This is the one place where the rooms meet; each room stays ignorant of the
ones after it in the flow.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from maintd import timers, views
from maintd.activation import record_activation, record_rejection, release_memory
from maintd.changes.health import RunnerChecks
from maintd.changes.worker import ChangeWorker
from maintd.clock import Clock
from maintd.executor import Executor
from maintd.executor.reaper import live_workers
from maintd.firing import TimerFiring
from maintd.incidents import auditor
from maintd.incidents.deadlines import breach_due, next_breach_at
from maintd.incidents.from_runs import alerts_from_streaks
from maintd.incidents.pipeline import ingest
from maintd.lease import UNLEASED, Gate
from maintd.metrics import Metrics
from maintd.notify.dispatcher import Dispatcher
from maintd.notify.transport import Notifier
from maintd.plan.loader import LoadedPlan, PlanError, load_plan, plan_from_document
from maintd.registry import Registry
from maintd.remediation.executor import Remediator
from maintd.remediation.registry import builtin as remediation_actions
from maintd.remediation.tasks import TaskRunner
from maintd.runner.children import Children
from maintd.runner.recorder import Streak, recover_interrupted
from maintd.runner.runner import Runner
from maintd.scheduler.claims import claim_due, next_due_at
from maintd.scheduler.orders import RunOrder
from maintd.settings import Settings
from maintd.slo.watch import SloWatch
from maintd.store.db import Store, dialect_insert
from maintd.store.events import Event, append
from maintd.store.models import HeartbeatRow

log = logging.getLogger(__name__)

EXECUTOR_CHANGED = (
    "runner.executor changed: it takes effect when maintd serve and maintd worker next start "
    "(docs/plan.md#runnerexecutor); until then runs execute as before"
)

IDLE_WAKE = timedelta(seconds=2)  # re-check the store at least this often (another process may add work)
HEARTBEAT_EVERY = timedelta(seconds=5)
# Pokes closer than this to the last tick's start share the next tick: at 100 alerts/s a tick per
# alert (its reads, ~1 ms of CPU) was a tenth of the process, while the alert's own transaction
# already fires its first page (firing_in_place). What only a poked tick does waits at most this long.
POKE_SPACING = 0.025  # seconds, real time
DISPATCH_GRACE = 10.0  # seconds a page being sent at shutdown may finish; the rest is resent after its lease
CLAIM_BATCH = 1000


@dataclass
class ReloadResult:
    ok: bool
    digest: str | None = None
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    changed: bool = False


def instance_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


class Engine:
    def __init__(
        self,
        settings: Settings,
        *,
        store: Store,
        registry: Registry,
        clock: Clock,
        metrics: Metrics | None = None,
        notifier: Notifier | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.registry = registry
        self.clock = clock
        self.metrics = metrics or Metrics()
        self.instance = instance_name()
        self.loaded: LoadedPlan | None = None
        self.maintenance_tasks: frozenset[str] = frozenset()  # tasks whose running runs mute alerts
        self.last_reload: ReloadResult | None = None
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self._last_beat: datetime | None = None
        self._loop_task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        # The loop's wake-up time while it sleeps (None while it ticks), the earliest due time of
        # rows recorded runs freed during a tick, and whether recorded runs raised alerts.
        self._sleep_until: datetime | None = None
        self._freed_due: datetime | None = None
        self._alerted = False
        # poke() since the last tick; whether the last tick leased the pages it queued itself; when
        # a queued page is next claimable (read by a tick after a poke).
        self._poked = False
        self._leased = False
        self._pages_at: datetime | None = None
        self._poked_tick = False
        self._tick_started = 0.0  # time.monotonic() at the last tick's start
        self._spaced: asyncio.TimerHandle | None = None  # a poke's wake waiting for POKE_SPACING
        # None: not looked at yet (another process may have raised it before this one started).
        self._overdue_alert: bool | None = None
        self.children = Children(settings.state_dir / "children") if settings.state_dir else None
        self.runner = Runner(
            store=store,
            registry=registry,
            clock=clock,
            owner=self.instance,
            metrics=self.metrics,
            on_recorded=self._recorded,
            children=self.children,
            on_streaks=self._alert_from_runs,
        )
        # remediation: playbooks act on new firing alerts, off the alert path (maintd.remediation)
        self.remediator = Remediator(
            store=store,
            clock=clock,
            owner=self.instance,
            actions=remediation_actions(),
            plan=lambda: self.loaded.plan if self.loaded is not None else None,
            run_task=TaskRunner(
                store=store, clock=clock, runner=self.runner, owner=self.instance, loaded=lambda: self.loaded
            ),
            on_change=self.poke,
        )
        # None: this process queues notifications but leaves delivering them to others (tests).
        self.dispatcher = (
            Dispatcher(
                store,
                clock,
                notifier,
                owner=self.instance,
                metrics=self.metrics,
                concurrency=settings.notify_concurrency,
            )
            if notifier is not None
            else None
        )
        self.firing = TimerFiring(
            store=store,
            owner=self.instance,
            dispatcher=self.dispatcher,
            base_url=settings.base_url,
            notify=self.notify,
            wake=self.wake,
        )
        # Change requests' steps (maintd.changes): their watched checks run on this runner.
        self.changes = ChangeWorker(
            store=store,
            clock=clock,
            checks=RunnerChecks(store=store, runner=self.runner, clock=clock, owner=self.instance),
            owner=self.instance,
            plan=lambda: self.loaded,
            base_url=settings.base_url,
            on_queued=self.notify,
        )
        self._changes_task: asyncio.Task[None] | None = None
        # [executor] Where the scheduler's claimed runs go: this runner, or Celery workers (set by serve).
        self.executor: Executor = self.runner
        self.slos = SloWatch(store)  # [slo] burn-rate alerts, evaluated every minute by the tick
        # [lease] Scale-out: the PostgreSQL lease that fences each tick (maintd.lease); set by serve.
        self.lease: Gate = UNLEASED
        # [lease] Tells the schedulers of other processes (maintd.wakeup); API replicas and standbys set it.
        self.poke_others: Callable[[], None] = lambda: None

    # -- plan -------------------------------------------------------------

    def reload(self, actor: str = "system") -> ReloadResult:
        """Load the plan from disk; on any problem keep the plan that is running."""
        path = self.settings.plan_path
        now = self.clock.now()
        if path is None:
            return ReloadResult(False, problems=["no plan path configured (--plan or MAINTD_PLAN)"])
        try:
            loaded = load_plan(path, self.registry)
        except PlanError as exc:
            problems = [str(p) for p in exc.problems]
            with self.store.write() as session:
                kept = self.loaded.digest if self.loaded else None
                record_rejection(session, now, actor=actor, source=str(path), problems=problems, kept=kept)
            self.metrics.plan_reloads.labels("rejected").inc()
            self.last_reload = ReloadResult(False, problems=problems)
            log.error("plan %s rejected, keeping the running plan:\n%s", path, "\n".join(problems))
            return self.last_reload
        return self.activate(loaded, actor, str(path))

    def activate(self, loaded: LoadedPlan, actor: str, source: str) -> ReloadResult:
        """Make ``loaded`` the running plan: store it, sync the schedules, wake the loop."""
        now = self.clock.now()
        with self.store.write() as session:
            result, changed = record_activation(session, loaded, now, actor=actor, source=source)
        previous, self.loaded = self.loaded, loaded
        self.maintenance_tasks = frozenset(t.name for t in loaded.plan.tasks if t.mute_alerts)
        release_memory()
        self.runner.set_concurrency(loaded.plan.runner.concurrency)
        self.runner.output_limit = loaded.plan.runner.output_limit
        self.metrics.plan_reloads.labels("loaded").inc()
        self.metrics.schedules.set(result.added + result.rescheduled + result.unchanged)
        self.wake()
        warnings = [str(w) for w in loaded.warnings]
        if previous is not None and previous.plan.runner.executor != loaded.plan.runner.executor:
            # Where runs execute is settled when processes start: the running ones keep theirs.
            warnings.append(EXECUTOR_CHANGED)
            log.warning("plan %s: %s", source, EXECUTOR_CHANGED)
        self.last_reload = ReloadResult(True, loaded.digest, warnings=warnings, changed=changed)
        return self.last_reload

    def start_plan(self) -> ReloadResult:
        """At start: the plan on disk, or, when that is invalid, the last good plan stored."""
        result = self.reload()
        if result.ok:
            return result
        with self.store.read() as session:
            stored = views.active_plan(session)
        if stored is None:
            return result
        log.warning("starting with the last good plan (%s) from the database", stored.digest[:12])
        self.activate(plan_from_document(stored.document, self.registry), "system", stored.source)
        return result

    def _alert_from_runs(self, session: Session, streaks: list[Streak]) -> None:
        """Runs that crossed their task's alert threshold become alerts, in the recording transaction."""
        alerts = alerts_from_streaks(streaks)
        if alerts and self.loaded is not None:
            self._alerted = True  # their timers may be due now: _recorded wakes the loop
            ingest(
                session,
                alerts,
                now=self.clock.now(),
                settings=self.loaded.plan.incidents,
                actor="runner",
                maintenance_tasks=self.maintenance_tasks,
            )

    # -- scheduling -------------------------------------------------------

    def recover(self) -> list[str]:
        """At start: runs a dead process left running become interrupted and owed."""
        with self.store.write() as session:
            now = self.clock.now()
            # [executor] Runs of Celery workers still beating are theirs to record (maintd.executor.reaper).
            recovered = recover_interrupted(session, now, spare=live_workers(session, now))
        if self.children is not None:
            # Commands a SIGKILLed maintd started are still running: stop them before the re-run.
            self.children.kill_orphans(recovered)
        return recovered

    def tick(self, now: datetime) -> tuple[list[RunOrder], datetime | None]:
        """Claim what is due at ``now``; also return the next due time when nothing is."""
        loaded = self.loaded
        if loaded is None:
            return [], None
        handlers = self.timer_handlers(loaded)
        with self.store.read() as session:
            earliest = next_due_at(session, now)
            breach_at = next_breach_at(session)
            timer_at = timers.next_due_at(session, kinds=list(handlers))
            if self._poked_tick and self.dispatcher is not None:
                self._pages_at = self.dispatcher.next_due_at(session)
        self._heartbeat(now)
        if breach_at is not None and breach_at <= now:
            self._breach_deadlines(now, loaded)
            breach_at = None
        # The auditor looks before firing (a step is late now, whoever fires it next) and, once it
        # raised its alert, after (to resolve it when this tick caught up).
        if self._overdue_alert is None or (timer_at is not None and timer_at < now - auditor.OVERDUE):
            self._audit_escalations(now, loaded)
        if timer_at is not None and timer_at <= now:
            timer_at, leased = self.firing.fire(now, loaded)
            self._leased = self._leased or leased
        if self._overdue_alert:
            self._audit_escalations(now, loaded)
        self._remediate(loaded)
        if self.slos.tick(now, loaded.plan, maintenance_tasks=self.maintenance_tasks):  # [slo]
            timer_at = now  # the alerts' new incidents may have timers due now
        if earliest is None or earliest > now:
            return [], min((t for t in (earliest, breach_at, timer_at) if t is not None), default=None)
        with self.store.write() as session:
            claimed = claim_due(session, loaded, now, owner=self.instance, limit=CLAIM_BATCH)
            append(session, claimed.events)
        for lag in claimed.lag_seconds:
            self.metrics.scheduler_lag.observe(lag)
        # Nothing claimable (rows still running) must not hide a timer or deadline due before IDLE_WAKE.
        return claimed.orders, min((t for t in (breach_at, timer_at) if t is not None), default=None)

    def _remediate(self, loaded: LoadedPlan) -> None:
        """Playbook decisions about new firing alerts; a failure is logged and retried next tick."""
        if not loaded.plan.playbooks:
            return
        try:
            self.remediator.intake()
        except Exception:
            log.exception("remediation intake failed; retrying next tick")

    def _breach_deadlines(self, now: datetime, loaded: LoadedPlan) -> None:
        """Record missed response deadlines; a failure here must not stop the scheduling."""
        try:
            with self.store.write() as session:
                breaches = breach_due(session, now, loaded.plan.incidents)
        except Exception:
            log.exception("recording response deadline breaches failed; retrying next tick")
            return
        for b in breaches:
            log.warning(
                "incident %s (%s) missed its response deadline %s", b.incident_id, b.priority, b.ack_deadline
            )

    def timer_handlers(self, loaded: LoadedPlan) -> dict[str, timers.Handler]:
        return self.firing.handlers(loaded)

    def firing_in_place(self, session: Session, now: datetime) -> contextlib.AbstractContextManager[None]:
        """Around the pipeline in an alert's transaction: the timers it schedules due at ``now`` are
        fired in that transaction, without a claim of their own, their pages sent once it commits
        (maintd.firing)."""
        if self.loaded is None:
            return contextlib.nullcontext()
        return self.firing.in_place(session, now, self.loaded)

    def _audit_escalations(self, now: datetime, loaded: LoadedPlan) -> None:
        """Raise (or resolve) the EscalationOverdue alert; a failure is logged and retried next tick."""
        try:
            with self.store.write() as session:
                self._overdue_alert = auditor.audit(session, now, settings=loaded.plan.incidents)
        except Exception:
            log.exception("auditing escalation timers failed; retrying next tick")
            return
        if self._overdue_alert:
            log.error("escalation steps are more than %s overdue: pages are late", auditor.OVERDUE)

    def _heartbeat(self, now: datetime) -> None:
        if self._last_beat is not None and now - self._last_beat < HEARTBEAT_EVERY:
            return
        with self.store.write() as session:
            stmt = dialect_insert(session)(HeartbeatRow).values(
                component="scheduler", instance=self.instance, beat_at=now
            )
            update = {"instance": self.instance, "beat_at": now}
            session.execute(stmt.on_conflict_do_update(index_elements=["component"], set_=update))
        self._last_beat = now

    async def run_scheduler(self) -> None:
        """Tick until stopped: claim due rows, hand them to the runner, sleep until the next."""
        self.runner.start()
        while not self._stopping.is_set():
            self._wake.clear()
            self._sleep_until = self._freed_due = None
            now = self.clock.now()
            poked, self._poked, self._leased = self._poked, False, False
            self._tick_started = time.monotonic()
            self._poked_tick, self._pages_at = poked, now  # unless the tick reads otherwise
            try:
                orders, earliest = await asyncio.to_thread(self.lease.call, self.tick, now)
            except Exception:
                log.exception("scheduler tick failed; retrying")
                orders, earliest = [], None
            if not self.lease.held():  # [lease] fenced: claim nothing more; serve steps down
                log.error("the scheduler lease is lost: this process stops scheduling")
                return
            if poked and not self._leased and self._pages_at is not None and self._pages_at <= now:
                # Pages queued outside timers (resolution notices) are the dispatcher's. Only a
                # claimable one wakes it (pages sent by the alert's transaction are not).
                self.notify()
            self.metrics.scheduler_ticks.inc()
            if self.loaded is not None and self.loaded.plan.playbooks:
                self.remediator.kick()  # queued and approved executions run beside the loop
            for order in orders:
                self.executor.submit(order)  # [executor]
            if orders:
                continue  # a full batch may mean more is due
            wake_at = now + IDLE_WAKE if earliest is None else min(earliest, now + IDLE_WAKE)
            if self._freed_due is not None:  # rows freed while this tick read the store
                wake_at = min(wake_at, self._freed_due)
            self._sleep_until = wake_at
            await self.clock.sleep_until(wake_at, self._wake)

    def _recorded(self, due: datetime | None) -> None:
        """After a recorded batch: wake the loop only if the rows it freed are due before the loop
        would wake anyway, or if its runs raised alerts (a tick per batch was ~0.1 ms per run)."""
        alerted, self._alerted = self._alerted, False
        if alerted:
            self._wake.set()
        elif due is None:
            return
        elif self._sleep_until is None:
            self._freed_due = due if self._freed_due is None else min(self._freed_due, due)
        elif due < self._sleep_until:
            self._wake.set()

    def notify(self) -> None:
        """Notifications were queued: deliver them now rather than at the next poll; any thread."""
        if self.dispatcher is not None:
            self.dispatcher.wake()

    def poke(self) -> None:
        """Something outside the loop changed incidents (an alert opened one, someone acknowledged):
        fire what became due and deliver what was queued, now; safe from any thread.

        The dispatcher hears of it after the tick, and only if the tick did not lease the pages
        itself: waking both meant a second write transaction per alert, claiming nothing.
        """
        self._poked = True
        self.poke_others()  # [lease]
        if self.dispatcher is None or self._loop is None:
            self.notify()
        loop = self._loop
        if loop is None:
            self.wake()
        elif _running_loop() is loop:
            self._wake_spaced()
        else:
            loop.call_soon_threadsafe(self._wake_spaced)

    def _wake_spaced(self) -> None:
        """Wake the loop for a poke now, or POKE_SPACING after the last tick started (on the loop)."""
        if self._spaced is not None:
            return  # a wake is on its way
        wait = self._tick_started + POKE_SPACING - time.monotonic()
        if wait <= 0 or self._loop is None:
            self._wake.set()
            return

        def wake() -> None:
            self._spaced = None
            self._wake.set()

        self._spaced = self._loop.call_later(wait, wake)

    def wake(self) -> None:
        """Make the scheduler loop look at the store now; safe from any thread."""
        loop = self._loop
        if loop is None or _running_loop() is loop:
            self._wake.set()
        else:  # plan reloads run in worker threads; asyncio.Event is not thread-safe
            loop.call_soon_threadsafe(self._wake.set)

    def start(self) -> asyncio.Task[None]:
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self._loop_task = asyncio.create_task(self.run_scheduler(), name="maintd-scheduler")
        changes = self.changes.run_forever(self._stopping)
        self._changes_task = asyncio.create_task(changes, name="maintd-changes")
        if self.dispatcher is not None:
            self.dispatcher.start()
        return self._loop_task

    async def stop(self, grace: float) -> None:
        """Stop claiming, then give running runs ``grace`` seconds before interrupting them."""
        with self.store.write() as session:
            append(
                session,
                Event(
                    "engine.stopping",
                    "engine",
                    self.clock.now(),
                    "system",
                    {"instance": self.instance, "grace_seconds": grace, "running": self.runner.in_flight},
                ),
            )
        self._stopping.set()
        self._wake.set()
        if self._loop_task is not None:
            # The loop finishes its tick first: whatever it claimed is handed to the runner.
            with contextlib.suppress(asyncio.CancelledError):
                await self._loop_task
        if self._changes_task is not None:
            # A change step cut short here (its commands killed) runs again at the next start.
            self._changes_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._changes_task
        await self.remediator.aclose(grace)  # executions still running then are failed later as abandoned
        if (close := getattr(self.executor, "aclose", None)) is not None:  # [executor] messages being sent
            await close()
        await self.runner.stop(grace)
        if self.dispatcher is not None:
            await self.dispatcher.stop(min(grace, DISPATCH_GRACE))
        with self.store.write() as session:
            append(
                session,
                Event("engine.stopped", "engine", self.clock.now(), "system", {"instance": self.instance}),
            )


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None
