"""``maintd serve``: scheduler, runner and API in one asyncio process.

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
from collections.abc import Iterator
from typing import Any

import uvicorn

from maintd.api.app import create_app
from maintd.api.deps import AppContext
from maintd.clock import Clock
from maintd.engine import Engine
from maintd.kpi.exporter import KpiCollector
from maintd.metrics import Metrics
from maintd.notify.transport import AppriseNotifier
from maintd.registry import Registry
from maintd.settings import Settings
from maintd.store.db import Store
from maintd.store.events import Event, append

log = logging.getLogger(__name__)


class StartupError(Exception):
    pass


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        # The process's signals belong to serve(), which stops the scheduler before the API.
        yield


async def serve(settings: Settings, clock: Clock, *, registry: Registry | None = None) -> None:
    store = Store(settings.database_url)
    store.upgrade()
    engine = Engine(
        settings,
        store=store,
        registry=registry or Registry.default(),
        clock=clock,
        metrics=Metrics(),
        notifier=AppriseNotifier(),
    )
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
    with store.write() as session:
        append(
            session, Event("engine.started", "engine", clock.now(), "system", {"instance": engine.instance})
        )

    engine.metrics.registry.register(KpiCollector(store, clock))
    app = create_app(AppContext(store, clock, engine.metrics, engine))
    config = uvicorn.Config(
        app, host=settings.host, port=settings.port, log_level="warning", lifespan="off", http=_http_parser()
    )
    api = _Server(config)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    loop.add_signal_handler(signal.SIGHUP, lambda: loop.create_task(_reload(engine)))

    api_task = asyncio.create_task(api.serve(), name="maintd-api")
    # The API first: a plan that checks maintd itself must find it listening.
    while not api.started and not api_task.done():
        await asyncio.sleep(0.01)
    scheduler = engine.start()
    stopper = asyncio.create_task(stop.wait())
    log.info(
        "maintd serving http://%s:%d with plan %s", settings.host, settings.port, engine.loaded.digest[:12]
    )
    done, _ = await asyncio.wait({scheduler, api_task, stopper}, return_when=asyncio.FIRST_COMPLETED)
    failure = _failure(done, stopper)

    grace = engine.loaded.plan.runner.shutdown_grace.total_seconds()
    await engine.stop(grace)
    api.should_exit = True
    stopper.cancel()
    for task in (api_task, stopper):
        with contextlib.suppress(asyncio.CancelledError, SystemExit):
            await task
    store.dispose()
    if failure:
        raise StartupError(failure)


def _http_parser() -> str:
    # httptools (C) rather than h11 (pure Python): ~11% less CPU per alert request, measured in
    # docs/benchmarks.md (ingest). h11 stays the fallback where httptools is not installed.
    return "httptools" if importlib.util.find_spec("httptools") is not None else "h11"


async def _reload(engine: Engine) -> None:
    result = await asyncio.to_thread(engine.reload, "signal:SIGHUP")
    if result.ok:
        log.info("plan reloaded (%s)", (result.digest or "")[:12])


def _failure(done: set[asyncio.Task[Any]], stopper: asyncio.Task[Any]) -> str | None:
    for task in done:
        if task is stopper:
            continue
        if task.cancelled():
            return f"{task.get_name()} was cancelled"
        exc = task.exception()
        if isinstance(exc, SystemExit):
            return f"{task.get_name()} could not start (is port in use?)"
        if exc is not None:
            return f"{task.get_name()} failed: {exc!r}"
        return f"{task.get_name()} stopped"
    return None
