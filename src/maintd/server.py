"""``maintd serve``: scheduler, runner and API in one asyncio process (with the API, the drain of
``maintd intake``'s journal).

Signals: SIGHUP reloads the plan (an invalid one is rejected and the running
plan kept); SIGTERM and SIGINT stop scheduling, give running tasks the plan's
``runner.shutdown_grace`` to finish, record the rest as interrupted, and exit.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import logging
import signal
import socket
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import uvicorn
from fastapi import FastAPI
from sqlalchemy import text

from maintd import __version__, claims, views
from maintd.api.app import _health_routes, create_app
from maintd.api.deps import AppContext
from maintd.clock import Clock
from maintd.engine import Engine
from maintd.executor import Executor
from maintd.executor.reaper import Reaper
from maintd.intake.backlog import BacklogCollector
from maintd.intake.drain import Drain
from maintd.kpi.exporter import KpiCollector
from maintd.lease import Lease, LeaseLost
from maintd.metrics import Metrics
from maintd.notify.transport import AppriseNotifier
from maintd.plan.loader import PlanError, load_plan, plan_from_document
from maintd.registry import Registry
from maintd.settings import Settings
from maintd.store.db import Store, StoreError
from maintd.store.events import Event, append
from maintd.store.outage import quiet_outages, unavailable, unusable
from maintd.wakeup import Listener, sender

log = logging.getLogger(__name__)
MIGRATE_KEY = 0x6D61_696E_7464_0001  # [lease] the advisory lock that serialises start-up migrations


class StartupError(Exception):
    pass


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        # The process's signals belong to serve(), which stops the scheduler before the API.
        yield


async def serve(settings: Settings, clock: Clock, *, registry: Registry | None = None) -> None:
    quiet_outages()  # a database outage: one log line per failure, not a traceback per loop and tick
    try:
        store = Store(settings.database_url)
    except StoreError as exc:
        raise StartupError(str(exc)) from None
    if store.dialect != "postgresql" and settings.role != "all":  # [lease]
        raise StartupError(
            f"--role {settings.role} needs PostgreSQL: on {store.dialect} there is one maintd process "
            "by definition; use --role all (the default) or set MAINTD_DATABASE_URL to PostgreSQL"
        )
    with contextlib.ExitStack() as held:
        try:  # before anything is written: a second maintd by mistake must change nothing
            sock = held.enter_context(claims.port(settings.host, settings.port))
            held.enter_context(claims.database(store))
        except claims.ClaimError as exc:
            store.dispose()
            raise StartupError(str(exc)) from None
        await _serve(settings, clock, store, sock, registry)


async def _serve(
    settings: Settings, clock: Clock, store: Store, sock: socket.socket, registry: Registry | None
) -> None:
    try:
        _upgrade(store)
    except StoreError as exc:
        raise StartupError(str(exc)) from None
    except Exception as exc:  # unreachable, or a new SQLite file on a full disk
        if not unavailable(exc):
            raise
        raise StartupError(unusable(store.describe(), exc)) from None
    engine = Engine(
        settings,
        store=store,
        registry=registry or Registry.default(),
        clock=clock,
        metrics=Metrics(),
        notifier=AppriseNotifier() if settings.schedules else None,
    )
    # [lease] On PostgreSQL the scheduler runs only while this process holds the lease.
    lease = _lease(settings, store, engine)
    if store.dialect == "postgresql" and settings.serves_api:
        engine.poke_others = _wake_the_holder(store, engine, lease)
    if lease is None and settings.schedules:
        _take_over(engine, clock)
    else:  # an API replica or a standby: the plan in memory, nothing written
        _load_plan(engine)
    assert engine.loaded is not None
    settings = engine.settings = _executor_settings(settings, engine)  # [executor] flags/env over the plan
    if settings.executor == "celery" and settings.schedules:  # [executor]
        engine.executor = _celery_executor(settings, engine)

    engine.metrics.registry.register(KpiCollector(store, clock))
    engine.metrics.registry.register(BacklogCollector(store, clock))  # maintd intake's journal
    ctx = AppContext(store, clock, engine.metrics, engine)
    app = create_app(ctx) if settings.serves_api else _health_app(ctx)
    config = uvicorn.Config(
        app, host=settings.host, port=settings.port, log_level="warning", lifespan="off", http=_http_parser()
    )
    api = _Server(config)
    stop = asyncio.Event()
    lost = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    scheduling = asyncio.Event()
    loop.add_signal_handler(signal.SIGHUP, lambda: loop.create_task(_reload(engine, scheduling.is_set())))

    api_task = asyncio.create_task(api.serve(sockets=[sock]), name="maintd-api")
    # The API first: a plan that checks maintd itself must find it listening.
    while not api.started and not api_task.done():
        await asyncio.sleep(0.01)
    stopper = asyncio.create_task(stop.wait())
    loser = asyncio.create_task(lost.wait(), name="maintd-lease")
    draining = asyncio.Event()  # set at shutdown: the intake drain stops
    drain_task = _drain(settings, ctx, draining)
    waiting: set[asyncio.Task[Any]] = {api_task, stopper, loser}
    listener: Listener | None = None
    if lease is not None:

        def on_lost() -> None:  # from the keeper thread or a tick's thread
            loop.call_soon_threadsafe(lost.set)

        lease.on_lost = on_lost
        lease.start()
        log.info("maintd (%s) is a standby until it holds the scheduler lease", settings.role)
        while not lease.acquired.is_set() and not stop.is_set() and not api_task.done():
            await asyncio.sleep(0.02)  # the keeper thread polls the database; this only looks at it
        if lease.acquired.is_set() and not stop.is_set():
            engine.lease = lease
            await asyncio.to_thread(_take_over, engine, clock, lease.epoch)
    reaping = asyncio.Event()  # [executor] set at shutdown: the reaper stops
    reaper_task: asyncio.Task[None] | None = None
    if settings.schedules and (lease is None or engine.lease is lease):
        waiting.add(engine.start())
        scheduling.set()
        if settings.executor == "celery":  # [executor] runs whose message was lost (maintd.executor.reaper)
            sweeps = _reaper(settings, engine).run(engine.lease, engine.runner.run_ids, reaping)
            reaper_task = asyncio.create_task(sweeps, name="maintd-reaper")
        if lease is not None:  # API replicas' alerts wake this scheduler (maintd.wakeup)
            listener = Listener(store.url, engine.poke)
            listener.start()
    log.info(
        "maintd (%s) serving http://%s:%d with plan %s",
        settings.role,
        settings.host,
        settings.port,
        engine.loaded.digest[:12],
    )
    done, _ = await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
    failure = _failure(done, stopper)
    if lost.is_set() and lease is not None:
        # Fenced: stop at once (grace 0), its runs were or will be recovered by the new holder.
        failure = f"lost the scheduler lease ({lease.reason}); exiting so the supervisor restarts it"
    grace = 0.0 if lost.is_set() else engine.loaded.plan.runner.shutdown_grace.total_seconds()
    draining.set()
    if drain_task is not None:
        await drain_task  # a batch in progress commits or rolls back before the store goes
    reaping.set()
    if reaper_task is not None:
        await reaper_task  # a sweep in progress commits or rolls back before the engine stops
    if waiting - {api_task, stopper, loser}:
        await engine.stop(grace)
    if listener is not None:
        listener.stop()
    if lease is not None:
        lease.stop(release=not lost.is_set())  # a clean stop hands over at once
    api.should_exit = True
    stopper.cancel()
    loser.cancel()
    tasks: tuple[asyncio.Task[Any], ...] = (api_task, stopper, loser)
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError, SystemExit):
            await task
    store.dispose()
    if failure:
        raise StartupError(failure)


def _upgrade(store: Store) -> None:
    """[lease] Migrate; on PostgreSQL one process at a time (API replicas and schedulers start together)."""
    if store.dialect != "postgresql":
        store.upgrade_apart()
        return
    with store.engine.connect() as conn:
        conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": MIGRATE_KEY})
        try:
            store.upgrade_apart()
        finally:
            conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": MIGRATE_KEY})


def _drain(settings: Settings, ctx: AppContext, stop: asyncio.Event) -> asyncio.Task[None] | None:
    """Every process serving the API drains the alert intake's journal (maintd.intake.drain)."""
    if not settings.serves_api:
        return None
    drain = Drain(ctx, poll=settings.intake_poll)
    return asyncio.create_task(drain.run(stop), name="maintd-intake-drain")


def _executor_settings(settings: Settings, engine: Engine) -> Settings:
    """[executor] The plan's runner.executor where no flag or variable says otherwise, checked. API
    replicas send nothing to workers: they need no broker."""
    assert engine.loaded is not None
    if not settings.schedules:
        return settings
    try:
        merged = settings.with_plan(engine.loaded.plan.runner.executor)
        merged.check_executor()
    except ValueError as exc:
        raise StartupError(str(exc)) from exc
    if engine.store.dialect != "postgresql" and merged.executor != "local":
        raise StartupError(
            f"executor {merged.executor} needs PostgreSQL: workers record runs in the same database; "
            "use executor local (the default) or set MAINTD_DATABASE_URL to PostgreSQL"
        )
    return merged


def _reaper(settings: Settings, engine: Engine) -> Reaper:
    """[executor] The lease holder's sweep for runs sent to Celery and never recorded."""
    from maintd.executor.celery_app import make_app, queue_depth

    app = make_app(settings)  # its own connections: the sweep runs in a thread of its own
    return Reaper(
        store=engine.store,
        clock=engine.clock,
        owner=engine.instance,
        loaded=lambda: engine.loaded,
        interval=timedelta(seconds=settings.reaper_interval),
        grace=timedelta(seconds=settings.reaper_grace),
        metrics=engine.metrics,
        queued=lambda: queue_depth(app, settings.queue),
        queue=settings.queue,
        on_alert=engine.poke,
    )


def _celery_executor(settings: Settings, engine: Engine) -> Executor:
    """[executor] Claimed runs go to Celery workers; the runner takes them while the broker is down."""
    from maintd.executor.celery_app import make_app
    from maintd.executor.dispatch import CeleryExecutor

    return CeleryExecutor(
        app=make_app(settings),
        queue=settings.queue,
        runner=engine.runner,
        store=engine.store,
        clock=engine.clock,
        loaded=lambda: engine.loaded,
        on_alert=engine.poke,
    )


def _lease(settings: Settings, store: Store, engine: Engine) -> Lease | None:
    """[lease] The scheduler lease on PostgreSQL; None where one process is all there is."""
    if not settings.schedules or store.dialect != "postgresql":
        return None
    return Lease(store.url, holder=engine.instance, ttl=settings.lease_ttl)


def _wake_the_holder(store: Store, engine: Engine, lease: Lease | None) -> Callable[[], None]:
    """[lease] ``poke`` for a process that is not the scheduler: NOTIFY the one that is."""
    send = sender(store)

    def poke_others() -> None:
        if lease is None or engine.lease is not lease:
            send()

    return poke_others


def _take_over(engine: Engine, clock: Clock, epoch: int | None = None) -> None:
    """Become the scheduler: recover what a dead holder left running, sync the plan, say so."""
    recovered = engine.recover()
    if recovered:
        log.warning("%d run(s) were interrupted by an earlier stop; each will run again", len(recovered))
    result = engine.start_plan()
    if engine.loaded is None:
        raise StartupError(
            "the plan is invalid and no earlier plan is stored:\n" + "\n".join(result.problems)
        )
    if not result.ok:
        log.error("plan on disk rejected, running the last good plan:\n%s", "\n".join(result.problems))
    payload: dict[str, Any] = {"instance": engine.instance, "role": engine.settings.role}
    if epoch is not None:
        payload["lease_epoch"] = epoch
    with engine.store.write() as session:
        append(session, Event("engine.started", "engine", clock.now(), "system", payload))


def _load_plan(engine: Engine) -> None:
    """[lease] The plan in memory only (API replicas, standbys): the lease holder stores and syncs it."""
    problems: list[str] = []
    loaded = None
    if engine.settings.plan_path is not None:
        try:
            loaded = load_plan(engine.settings.plan_path, engine.registry)
        except PlanError as exc:
            problems = [str(p) for p in exc.problems]
    if loaded is None:
        with engine.store.read() as session:
            stored = views.active_plan(session)
        if stored is None:
            raise StartupError("the plan is invalid and no earlier plan is stored:\n" + "\n".join(problems))
        # The same words as a lone process's start (Engine.start_plan), whichever role starts.
        log.warning(
            "starting with the last good plan (%s) from the database; the plan on disk is rejected:\n%s",
            stored.digest[:12],
            "\n".join(problems),
        )
        loaded = plan_from_document(stored.document, engine.registry)
    engine.loaded = loaded
    engine.maintenance_tasks = frozenset(t.name for t in loaded.plan.tasks if t.mute_alerts)


def _health_app(ctx: AppContext) -> FastAPI:
    """[lease] The scheduler role's port: /healthz, /readyz and /metrics, no API."""
    app = FastAPI(title="maintd scheduler", version=__version__)
    app.state.ctx = ctx
    app.include_router(_health_routes())
    return app


def _http_parser() -> str:
    # httptools (C) rather than h11 (pure Python): ~11% less CPU per alert request, measured in
    # docs/benchmarks.md (ingest). h11 stays the fallback where httptools is not installed.
    return "httptools" if importlib.util.find_spec("httptools") is not None else "h11"


async def _reload(engine: Engine, scheduling: bool) -> None:
    if not scheduling:  # [lease] an API replica or a standby: the holder stores the plan
        await asyncio.to_thread(_load_plan, engine)
        return
    try:  # [lease] fenced like a tick: a holder that lost the lease does not store a plan
        result = await asyncio.to_thread(engine.lease.call, engine.reload, "signal:SIGHUP")
    except LeaseLost as exc:
        log.error("plan not reloaded: %s", exc)
        return
    if result.ok:
        log.info("plan reloaded (%s)", (result.digest or "")[:12])


def _failure(done: set[asyncio.Task[Any]], stopper: asyncio.Task[Any]) -> str | None:
    for task in done:
        if task is stopper:
            continue
        if task.cancelled():
            return f"{task.get_name()} was cancelled"
        exc = task.exception()
        if exc is not None:
            return f"{task.get_name()} failed: {exc!r}"
        return f"{task.get_name()} stopped"
    return None
