"""The Celery task that hands run messages to a ``WorkerRuntime``, and the worker's start."""

from __future__ import annotations

import logging
from typing import Any

from celery import Celery, Task  # type: ignore[import-untyped]

from maintd.executor.celery_app import TASK
from maintd.executor.messages import BadMessage
from maintd.executor.worker import WorkerRuntime

log = logging.getLogger(__name__)
RETRY_DELAY = 2.0  # seconds between attempts while the database is away
RETRIES = 150  # ... about five minutes; then the message is dropped and the scheduler's recovery owns the run


def register(app: Celery, runtime: WorkerRuntime) -> None:
    @app.task(  # type: ignore[untyped-decorator]
        name=TASK, bind=True, acks_late=True, reject_on_worker_lost=True, max_retries=RETRIES
    )
    def run(self: Task[Any, Any], message: dict[str, Any]) -> str:
        try:
            return runtime.handle(message)
        except (BadMessage, LookupError) as exc:  # retrying cannot help: say so and drop it
            log.error("run message dropped: %s", exc)
            return "dropped"
        except Exception as exc:  # the database is away: the message comes back, and is idempotent
            log.exception("run message failed; retrying in %.0fs", RETRY_DELAY)
            raise self.retry(exc=exc, countdown=RETRY_DELAY) from exc


def start(app: Celery, *, queue: str, concurrency: int, name: str, log_level: str) -> None:
    """Run the Celery worker in this process until SIGTERM (warm shutdown) or SIGKILL."""
    app.worker_main(
        [
            "worker",
            f"--pool={'solo' if concurrency == 1 else 'threads'}",
            f"--concurrency={concurrency}",
            f"--queues={queue}",
            f"--hostname={name}",
            f"--loglevel={log_level.upper()}",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
        ]
    )
