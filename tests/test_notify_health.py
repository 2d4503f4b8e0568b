"""The log of a failing receiver: one warning when it starts, a summary while it stays down, one
line when it is back; each attempt only at DEBUG."""

from __future__ import annotations

import logging
import socket
from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import select

from maintd.clock import FakeClock
from maintd.notify.dispatcher import Dispatcher
from maintd.notify.health import ReceiverHealth
from maintd.notify.transport import AppriseNotifier, TransportError
from maintd.store.db import Store
from maintd.store.models import NotificationAttemptRow
from tests.notify_support import queue

SMTP = "mailto://127.0.0.1:8025?from=maintd@example.test&to={}@example.test"
HOOK = "json://127.0.0.1:8026/pages"
REFUSED = TransportError('Connection error while submitting email to "127.0.0.1"')
NOT_FOUND = TransportError("HTTP 404: Failed to send JSON POST notification", permanent=True)


@pytest.fixture
def health(clock: FakeClock) -> ReceiverHealth:
    return ReceiverHealth(clock, repeat=timedelta(minutes=10))


def lines(caplog: pytest.LogCaptureFixture, level: int) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "maintd.notify.health" and r.levelno == level]


def test_many_failures_of_one_receiver_give_one_warning_saying_where_the_attempts_are(
    health: ReceiverHealth, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    for n in range(18):  # three people's addresses on one SMTP server, six attempts each
        health.attempted(SMTP.format(("ann", "bob", "carol")[n % 3]), REFUSED, notification=n)
        clock.advance(timedelta(seconds=10))
    [warning] = lines(caplog, logging.WARNING)
    assert warning.startswith(
        "notifications to mailto://127.0.0.1:8025 are failing: "
        'Connection error while submitting email to "127.0.0.1"; retried on the backoff; '
    )
    assert "`maintd notifications list`" in warning and "docs/notifications.md" in warning
    assert lines(caplog, logging.INFO) == []


def test_each_attempt_is_logged_at_debug(health: ReceiverHealth, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="maintd.notify.health")
    for n in (7, 8):
        health.attempted(SMTP.format("ann"), REFUSED, notification=n)
    assert lines(caplog, logging.DEBUG) == [
        f"notification {n} to mailto://127.0.0.1:8025?from=maintd@example.test&to=ann@example.test failed: "
        'Connection error while submitting email to "127.0.0.1"'
        for n in (7, 8)
    ]


def test_a_delivery_after_failures_gives_one_info_line_with_the_count(
    health: ReceiverHealth, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    for n in range(4):
        health.attempted(SMTP.format("ann"), REFUSED, notification=n)
        clock.advance(timedelta(seconds=50))
    health.attempted(SMTP.format("bob"), None, notification=5)
    health.attempted(SMTP.format("ann"), None, notification=6)
    assert lines(caplog, logging.INFO) == [
        "notifications to mailto://127.0.0.1:8025 are delivered again, after 4 failed attempts in 3m20s"
    ]
    health.attempted(SMTP.format("ann"), REFUSED, notification=7)  # failing again: said again
    assert len(lines(caplog, logging.WARNING)) == 2


def test_a_second_failing_receiver_gets_its_own_warning(
    health: ReceiverHealth, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    for n in range(3):
        health.attempted(SMTP.format("ann"), REFUSED, notification=n)
        health.attempted(HOOK, TransportError("HTTP 503: Service Unavailable"), notification=10 + n)
    first, second = lines(caplog, logging.WARNING)
    assert first.startswith("notifications to mailto://127.0.0.1:8025 are failing: Connection error")
    assert second.startswith("notifications to json://127.0.0.1:8026 are failing: HTTP 503")


def test_a_receiver_still_failing_is_summarised_after_the_interval_with_the_count(
    health: ReceiverHealth, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    started = clock.now()
    for n in range(30):  # one a minute: the summary comes with the attempt at 10 minutes
        health.attempted(SMTP.format("ann"), REFUSED, notification=n)
        clock.advance(timedelta(minutes=1))
    first, summary, again = lines(caplog, logging.WARNING)
    assert "are failing" in first
    assert summary.startswith(
        f"notifications to mailto://127.0.0.1:8025 still failing since {started:%Y-%m-%d %H:%M:%S} UTC: "
        "11 failed attempts, 10 in the last 10m; last error: Connection error"
    )
    assert "21 failed attempts, 10 in the last 10m" in again
    assert "`maintd notifications list`" in summary


def test_the_summary_counts_the_time_since_the_last_line_when_attempts_are_sparse(
    health: ReceiverHealth, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    health.attempted(SMTP.format("ann"), REFUSED, notification=1)
    clock.advance(timedelta(minutes=9))
    health.attempted(SMTP.format("ann"), REFUSED, notification=1)
    clock.advance(timedelta(minutes=5))
    health.attempted(SMTP.format("ann"), REFUSED, notification=1)
    assert "3 failed attempts, 2 in the last 14m" in lines(caplog, logging.WARNING)[1]


def test_a_permanent_failure_is_the_urls_own_and_others_on_its_host_do_not_end_it(
    health: ReceiverHealth, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    gone = "json://127.0.0.1:8026/old-hook"
    health.attempted(gone, NOT_FOUND, notification=1)
    health.attempted(HOOK, None, notification=2)  # the same host delivers another path
    health.attempted(gone, NOT_FOUND, notification=3)
    [warning] = lines(caplog, logging.WARNING)
    assert warning.startswith("notifications to json://127.0.0.1:8026/*** are failing: HTTP 404")
    assert "each page goes to its next channel" in warning
    assert lines(caplog, logging.INFO) == []


def test_a_receiver_that_never_failed_says_nothing_when_it_delivers(
    health: ReceiverHealth, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    health.attempted(HOOK, None, notification=1)
    assert [r for r in caplog.records if r.name == "maintd.notify.health"] == []


def test_credentials_in_a_receivers_address_are_never_logged(
    health: ReceiverHealth, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    health.attempted(
        "mailtos://ann:s3cr3tpass@smtp.example.test?to=ann@example.test", REFUSED, notification=1
    )
    assert "s3cr3tpass" not in caplog.text
    assert "notifications to mailtos://***@smtp.example.test are failing" in caplog.text


class _Kept(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def logged() -> Iterator[list[logging.LogRecord]]:
    """What reaches the root logger's handlers, where ``maintd serve`` writes its log (caplog
    also listens on loggers that do not propagate, as apprise's no longer does)."""
    root, kept = logging.getLogger(), _Kept()
    level = root.level
    root.addHandler(kept)
    root.setLevel(logging.DEBUG)
    try:
        yield kept.records
    finally:
        root.removeHandler(kept)
        root.setLevel(level)


def refused(person: str = "ann") -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])  # closed on leaving: nothing listens there
    return f"mailto://127.0.0.1:{port}?from=maintd@example.test&to={person}@example.test"


def test_a_dispatcher_whose_smtp_server_is_down_logs_one_warning_and_records_every_attempt(
    store: Store, clock: FakeClock, logged: list[logging.LogRecord]
) -> None:
    url = refused()
    for n, person in enumerate(("ann", "bob", "carol")):
        queue(store, clock, url.replace("to=ann", f"to={person}"), step=f"L{n}")
    notifier = AppriseNotifier(connect_timeout=1.0, read_timeout=1.0, total_timeout=3.0)
    dispatcher = Dispatcher(store, clock, notifier, owner="test")
    assert dispatcher.deliver_due(clock.now()) == 3
    assert dispatcher.deliver_due(clock.advance(timedelta(seconds=10))) == 3  # the first retry
    [warning] = [r for r in logged if r.levelno >= logging.INFO]
    assert warning.name == "maintd.notify.health"
    assert warning.getMessage().startswith(
        f"notifications to {url.split('?')[0]} are failing: Connection error"
    )
    with store.read() as session:
        attempts = list(session.scalars(select(NotificationAttemptRow)))
    assert len(attempts) == 6 and not any(a.ok for a in attempts)
    # apprise still tells the notifier why (its own handlers see its warnings): the error is recorded
    assert all(a.error == 'Connection error while submitting email to "127.0.0.1"' for a in attempts)


def test_apprises_lines_reach_the_log_at_debug(logged: list[logging.LogRecord]) -> None:
    with pytest.raises(TransportError):
        AppriseNotifier(connect_timeout=1.0, read_timeout=1.0).send(refused(), "title", "body")
    apprise = [(r.levelname, r.getMessage()) for r in logged if r.name == "apprise"]
    assert ("DEBUG", 'Connection error while submitting email to "127.0.0.1"') in apprise
    assert {level for level, _ in apprise} == {"DEBUG"}
