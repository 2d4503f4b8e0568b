"""``maintd worker``: a Celery worker executing the runs a ``--executor celery`` scheduler sends."""

from __future__ import annotations

import logging

import typer

from maintd.cli.common import DbOption, fail
from maintd.settings import Settings
from maintd.store.db import Store, StoreError


def worker(
    db: str | None = DbOption,
    broker_url: str = typer.Option(
        None,
        "--broker-url",
        envvar="MAINTD_BROKER_URL",
        help="The Celery broker (redis://HOST:6379/0); default: the stored plan's runner.executor.",
    ),
    queue: str = typer.Option(
        None,
        "--queue",
        envvar="MAINTD_QUEUE",
        help="Queue to take runs from (default: the plan's, else maintd).",
    ),
    concurrency: int = typer.Option(
        4,
        "--concurrency",
        envvar="MAINTD_WORKER_CONCURRENCY",
        help="Messages at once, each up to 50 runs (1: solo pool); runs at once: the plan's "
        "runner.concurrency.",
    ),
    visibility: float = typer.Option(
        None,
        "--visibility-timeout",
        envvar="MAINTD_BROKER_VISIBILITY",
        help="Seconds before Redis gives a dead worker's unfinished run to another worker; "
        "longer than the longest task timeout (default: the plan's, else 3600).",
    ),
    log_level: str = typer.Option("info", envvar="MAINTD_LOG_LEVEL", help="debug, info, warning, error."),
) -> None:
    """Execute checks and actions sent by a scheduler running with --executor celery (PostgreSQL)."""
    from maintd.clock import clock_from_spec
    from maintd.engine import instance_name
    from maintd.executor.celery_app import make_app
    from maintd.executor.consumer import register, start
    from maintd.executor.reaper import WorkerBeat
    from maintd.executor.worker import WorkerRuntime
    from maintd.registry import Registry
    from maintd.runner.children import Children
    from maintd.server import _upgrade
    from maintd.store.outage import quiet_outages

    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    quiet_outages()  # a database outage: one log line per failure, as in serve
    if concurrency < 1:
        fail("--concurrency must be at least 1", 2)
    try:
        settings = Settings.from_env(
            database_url=db,
            executor="celery",
            broker_url=broker_url,
            queue=queue,
            visibility_timeout=visibility,
        )
    except ValueError as exc:
        fail(str(exc), 2)
    try:
        store = Store(settings.database_url)
    except StoreError as exc:
        fail(str(exc), 2)
    if store.dialect != "postgresql":
        fail("maintd worker needs PostgreSQL (MAINTD_DATABASE_URL): the scheduler and workers share it", 2)
    _upgrade(store)  # one process at a time, as serve does
    try:
        settings = _with_stored_plan(settings, store)
        settings.check_executor()
    except ValueError as exc:
        fail(str(exc), 2)
    name = instance_name()
    runtime = WorkerRuntime(
        store=store,
        registry=Registry.default(),
        clock=clock_from_spec(settings.clock),
        owner=name,
        children=Children(settings.state_dir / "children") if settings.state_dir else None,
    )
    app = make_app(settings)
    register(app, runtime)
    beat = WorkerBeat(store, runtime.clock, name)  # while it beats, the scheduler's reaper leaves its runs
    beat.start()
    logging.getLogger(__name__).info("maintd worker %s takes runs from %s", name, settings.queue)
    try:
        start(
            app,
            queue=settings.queue,
            concurrency=concurrency,
            name="maintd-" + name.replace(":", "-"),
            log_level=log_level,
        )
    finally:
        beat.stop()
        runtime.close()
        store.dispose()


def _with_stored_plan(settings: Settings, store: Store) -> Settings:
    """The broker, queue and visibility timeout of the active plan's runner.executor (the scheduler
    stored it) where no flag or variable set them; the broker reference resolved here."""
    from maintd import views
    from maintd.plan.loader import PlanError
    from maintd.plan.models import RunnerSettings

    with store.read() as session:
        stored = views.active_plan(session)
    if stored is None:
        return settings
    try:
        runner = RunnerSettings.model_validate(stored.document.get("runner") or {})
    except (PlanError, ValueError) as exc:
        raise ValueError(f"the stored plan {stored.digest[:12]}: runner: {exc}") from exc
    return settings.with_plan(runner.executor)
