"""The Celery application both sides share: JSON only, late acknowledgement, one message at a time."""

from __future__ import annotations

import logging
from typing import Any

from celery import Celery  # type: ignore[import-untyped]

from maintd.settings import Settings

log = logging.getLogger(__name__)
TASK = "maintd.run"
CONNECT_TIMEOUT = 2.0  # seconds: a broker that does not answer is down (the scheduler falls back)


def make_app(settings: Settings) -> Celery:
    app = Celery("maintd", broker=settings.broker_url, set_as_current=False)
    visibility = max(1.0, settings.visibility_timeout)
    transport: dict[str, Any] = {
        # After a worker's death its unacknowledged run goes back to the queue once this has passed.
        "visibility_timeout": visibility,
        "unacked_restore_interval": max(1, min(10, int(visibility // 2))),
        "unacked_restore_throttle": 1,
        "socket_connect_timeout": CONNECT_TIMEOUT,
        "socket_timeout": 10.0,
    }
    app.conf.update(
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        task_default_queue=settings.queue,
        task_acks_late=True,  # acknowledged once the run is recorded: a SIGKILLed worker's is redelivered
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_ignore_result=True,  # results go to PostgreSQL, not to a result backend
        task_publish_retry=False,  # a down broker must fail the send at once: the scheduler falls back
        broker_connection_timeout=CONNECT_TIMEOUT,
        broker_connection_retry_on_startup=True,
        broker_transport_options=transport,
        worker_hijack_root_logger=False,
        worker_cancel_long_running_tasks_on_connection_loss=False,
    )
    return app


def queue_depth(app: Celery, queue: str) -> int | None:
    """Messages waiting in ``queue`` (not those workers hold), 0 when it does not exist (Redis drops
    an empty list), or None when the broker does not answer."""
    try:
        with app.connection_for_read() as conn:
            return int(conn.default_channel.queue_declare(queue=queue, passive=True).message_count)
    except Exception as exc:  # kombu's OperationalError, amqp's ChannelError, a socket error
        if "NOT_FOUND" in str(exc):
            return 0
        log.warning(
            "could not read the length of queue %s: %s", queue, str(exc).splitlines()[0] if str(exc) else exc
        )
        return None
