"""The dispatcher end to end: queued rows, real receivers on loopback, retries on the injected clock."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from maintd.clock import FakeClock
from maintd.metrics import Metrics
from maintd.notify.dispatcher import Dispatcher
from maintd.notify.outbox import cancel_pending
from maintd.notify.transport import AppriseNotifier
from maintd.store.db import Store
from maintd.store.models import EventRow, NotificationAttemptRow, NotificationRow
from tests.conftest import T0, run
from tests.notify_support import Mailbox, Webhook, queue


def dispatcher(store: Store, clock: FakeClock, **options: Any) -> Dispatcher:
    notifier = AppriseNotifier(connect_timeout=1.0, read_timeout=1.0, total_timeout=3.0)
    return Dispatcher(store, clock, notifier, owner="test", **options)


def row(store: Store, row_id: int) -> NotificationRow:
    with store.read() as s:
        found = s.get(NotificationRow, row_id)
        assert found is not None
        return found


def attempts(store: Store, row_id: int) -> list[NotificationAttemptRow]:
    with store.read() as s:
        query = select(NotificationAttemptRow).where(NotificationAttemptRow.notification_id == row_id)
        return list(s.scalars(query.order_by(NotificationAttemptRow.id)))


def events(store: Store) -> list[tuple[str, dict[str, Any]]]:
    with store.read() as s:
        rows = s.scalars(
            select(EventRow).where(EventRow.kind.startswith("notification.")).order_by(EventRow.id)
        )
        return [(e.kind, e.payload) for e in rows]


def test_a_page_arrives_by_email_with_everything_a_responder_needs(
    store: Store, clock: FakeClock, mailbox: Mailbox
) -> None:
    row_id = queue(store, clock, mailbox.url("ann@example.test"))
    assert dispatcher(store, clock).deliver_due(clock.now()) == 1
    [mail] = mailbox.messages
    assert mail.subject == "[P1] TRIGGERED #42 disk full on db01"
    assert mail.recipients == ["ann@example.test"]
    assert mail.text.splitlines() == [
        "/var on db01 is 97% full",
        "Priority: P1",
        "Severity: critical",
        "Target: db01",
        "Acknowledge by: 2026-11-27 01:15 UTC",
        "Runbook: https://runbooks.example.test/disk-full",
        "Acknowledge: https://maintd.example.test/ack/t0k3n",
        "Incident: https://maintd.example.test/api/v1/incidents/42",
    ]
    sent = row(store, row_id)
    assert (sent.status, sent.sent_at, sent.lease_until) == ("sent", T0, None)
    [attempt] = attempts(store, row_id)
    assert attempt.ok and attempt.at == T0 and attempt.target.startswith("mailto://127.0.0.1:")
    [(kind, payload)] = events(store)
    assert kind == "notification.sent"
    assert payload | {"target": "-"} == {
        "notification": row_id,
        "recipient": "person:ann",
        "state": "triggered",
        "step": "L1",
        "channel": 0,
        "target": "-",
        "attempt": 1,
        "by": "test",
    }


def test_a_webhook_receives_the_page_and_a_restart_never_sends_it_again(
    store: Store, clock: FakeClock, webhook: Webhook
) -> None:
    row_id = queue(store, clock, webhook.url("/hooks/ann"))
    assert dispatcher(store, clock).deliver_due() == 1
    [hit] = webhook.hits["/hooks/ann"]
    assert hit["title"] == "[P1] TRIGGERED #42 disk full on db01"
    assert "Runbook: https://runbooks.example.test/disk-full" in hit["message"].splitlines()

    restarted = Store(store.url)  # a new process: its own engine and connections
    try:
        queue(restarted, clock, webhook.url("/hooks/ann"))  # the same page queued again is the same row
        clock.advance(timedelta(hours=1))
        assert dispatcher(restarted, clock).deliver_due() == 0
    finally:
        restarted.dispose()
    assert webhook.count("/hooks/ann") == 1
    assert row(store, row_id).status == "sent"


def test_a_receiver_answering_500_is_retried_with_backoff_until_it_answers(
    store: Store, clock: FakeClock, webhook: Webhook
) -> None:
    row_id = queue(store, clock, webhook.answer("/hook", 500, 503))
    d = dispatcher(store, clock)
    assert d.deliver_due() == 1
    waiting = row(store, row_id)
    assert (waiting.status, waiting.attempts, waiting.due_at) == ("pending", 1, T0 + timedelta(seconds=10))
    assert waiting.last_error is not None and waiting.last_error.startswith("HTTP 500")

    clock.advance(9)
    assert d.deliver_due() == 0  # not before its backoff
    clock.advance(1)
    assert d.deliver_due() == 1
    assert row(store, row_id).due_at == T0 + timedelta(seconds=40)
    clock.advance(30)
    assert d.deliver_due() == 1

    assert webhook.count("/hook") == 3
    assert row(store, row_id).status == "sent"
    assert [a.ok for a in attempts(store, row_id)] == [False, False, True]
    assert [k for k, _ in events(store)] == ["notification.retry", "notification.retry", "notification.sent"]
    assert events(store)[0][1]["retry_at"] == (T0 + timedelta(seconds=10)).isoformat()


def test_a_receiver_answering_404_fails_for_good_and_the_next_channel_is_used_at_once(
    store: Store, clock: FakeClock, webhook: Webhook
) -> None:
    row_id = queue(store, clock, webhook.answer("/gone", 404), webhook.url("/backup"))
    assert dispatcher(store, clock).deliver_due() == 2
    assert (webhook.count("/gone"), webhook.count("/backup")) == (1, 1)
    done = row(store, row_id)
    assert (done.status, done.channel) == ("sent", 1)
    assert [(a.channel, a.ok, a.permanent) for a in attempts(store, row_id)] == [
        (0, False, True),
        (1, True, False),
    ]
    (failed, details), (sent, _) = events(store)
    assert (failed, sent) == ("notification.failed", "notification.sent")
    assert details["next_channel"] == 1 and details["permanent"] is True
    assert details["error"].startswith("HTTP 404")


def test_an_endpoint_failing_for_ten_minutes_falls_back_after_five_attempts(
    store: Store, clock: FakeClock, webhook: Webhook
) -> None:
    row_id = queue(store, clock, webhook.answer("/flaky", *[500] * 20), webhook.url("/fallback"))
    d = dispatcher(store, clock)
    for wait in (10, 30, 60, 120):
        assert d.deliver_due() == 1
        clock.advance(wait)
    assert d.deliver_due() == 2  # the fifth failure, then the fallback at once
    assert clock.now() - T0 == timedelta(minutes=3, seconds=40)
    assert (webhook.count("/flaky"), webhook.count("/fallback")) == (5, 1)
    assert row(store, row_id).status == "sent"
    failed = [p for k, p in events(store) if k == "notification.failed"]
    assert failed[0]["error"].startswith("gave up after 5 attempts: HTTP 500")


def test_the_last_channel_keeps_trying_longer_and_then_fails(store: Store, clock: FakeClock) -> None:
    row_id = queue(store, clock, "json://127.0.0.1:9/refused")  # port 9 (discard): nothing listens
    d = dispatcher(store, clock, max_attempts_last=3)
    for _ in range(3):
        assert d.deliver_due() == 1
        clock.advance(timedelta(minutes=5))
    failed = row(store, row_id)
    assert (failed.status, failed.attempts) == ("failed", 3)
    assert failed.last_error is not None and failed.last_error.startswith("gave up after 3 attempts: ")
    assert d.deliver_due() == 0


def test_an_unparseable_url_fails_for_good_at_once(store: Store, clock: FakeClock) -> None:
    row_id = queue(store, clock, "nosuch://example.test/x")
    assert dispatcher(store, clock).deliver_due() == 1
    failed = row(store, row_id)
    assert failed.status == "failed"
    assert failed.last_error is not None and failed.last_error.startswith("apprise cannot use nosuch://")
    [attempt] = attempts(store, row_id)
    assert attempt.permanent and not attempt.ok


def test_a_secret_reference_is_resolved_at_send_time_and_never_recorded(
    store: Store, clock: FakeClock, webhook: Webhook, monkeypatch: pytest.MonkeyPatch
) -> None:
    gone = queue(store, clock, "env:ANN_OLD_HOOK", subject="incident:1")
    fine = queue(store, clock, "env:ANN_HOOK", subject="incident:2")
    monkeypatch.setenv("ANN_OLD_HOOK", webhook.answer("/hooks/0ld-s3cr3t", 401))
    monkeypatch.setenv("ANN_HOOK", webhook.url("/hooks/s3cr3t-t0ken"))
    assert dispatcher(store, clock).deliver_due() == 2
    assert webhook.count("/hooks/s3cr3t-t0ken") == 1
    assert (row(store, gone).status, row(store, fine).status) == ("failed", "sent")
    assert [a.target for a in attempts(store, gone) + attempts(store, fine)] == [
        "env:ANN_OLD_HOOK",
        "env:ANN_HOOK",
    ]
    with store.read() as s:
        recorded = [str(r.__dict__) for model in (NotificationRow, NotificationAttemptRow, EventRow)
                    for r in s.scalars(select(model))]  # fmt: skip
    assert not [line for line in recorded if "s3cr3t" in line]


def test_a_secret_reference_that_does_not_resolve_fails_for_good(store: Store, clock: FakeClock) -> None:
    row_id = queue(store, clock, "env:MAINTD_TEST_UNSET_HOOK")
    dispatcher(store, clock).deliver_due()
    failed = row(store, row_id)
    assert failed.status == "failed"
    assert failed.last_error == "secret env:MAINTD_TEST_UNSET_HOOK refers to environment variable " \
        "MAINTD_TEST_UNSET_HOOK, which is not set"  # fmt: skip


def test_after_also_uses_the_next_channel_that_long_after_while_unacknowledged(
    store: Store, clock: FakeClock, webhook: Webhook
) -> None:
    row_id = queue(store, clock, {"url": webhook.url("/first"), "after": "5m"}, webhook.url("/second"))
    d = dispatcher(store, clock)
    assert d.deliver_due() == 1
    waiting = row(store, row_id)
    assert (waiting.status, waiting.channel, waiting.due_at, waiting.sent_at) == (
        "pending", 1, T0 + timedelta(minutes=5), T0
    )  # fmt: skip
    clock.advance(timedelta(minutes=4, seconds=59))
    assert d.deliver_due() == 0
    clock.advance(1)
    assert d.deliver_due() == 1
    assert (webhook.count("/first"), webhook.count("/second")) == (1, 1)
    done = row(store, row_id)
    assert (done.status, done.sent_at) == ("sent", T0)
    assert events(store)[0][1]["next_channel_at"] == (T0 + timedelta(minutes=5)).isoformat()


def test_after_does_not_use_the_next_channel_once_acknowledged(
    store: Store, clock: FakeClock, webhook: Webhook
) -> None:
    row_id = queue(store, clock, {"url": webhook.url("/first"), "after": "5m"}, webhook.url("/second"))
    d = dispatcher(store, clock)
    d.deliver_due()
    clock.advance(timedelta(minutes=2))
    with store.write() as s:
        assert (
            cancel_pending(s, incident_id=42, state="triggered", now=clock.now(), reason="acknowledged") == 1
        )
    clock.advance(timedelta(minutes=10))
    assert d.deliver_due() == 0
    assert (webhook.count("/first"), webhook.count("/second")) == (1, 0)
    assert row(store, row_id).status == "cancelled"


def test_a_claimed_row_waits_for_its_lease_and_the_late_result_does_not_overwrite(
    store: Store, clock: FakeClock, webhook: Webhook
) -> None:
    row_id = queue(store, clock, webhook.url("/hook"))
    crashed, survivor = dispatcher(store, clock), dispatcher(store, clock)
    with store.write() as s:
        [job] = crashed.claim(s, clock.now(), 10)  # then the process dies mid-send
    assert survivor.deliver_due() == 0
    with store.read() as s:
        assert survivor.next_due_at(s) == T0 + timedelta(minutes=2)
    clock.advance(timedelta(minutes=2, seconds=1))
    assert survivor.deliver_due() == 1
    assert row(store, row_id).status == "sent"
    # The first process was only slow: its result arrives after the row moved on and changes nothing.
    crashed.record(job, crashed.attempt(job), clock.now())
    assert row(store, row_id).status == "sent"
    assert events(store)[-1][1]["superseded"] is True
    assert webhook.count("/hook") == 2  # at least once: the one in-flight send is repeated


async def eventually(condition: Callable[[], bool], within: float = 10.0) -> None:
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


def test_a_hung_receiver_holds_only_its_own_notification(
    store: Store, clock: FakeClock, webhook: Webhook
) -> None:
    hung = queue(store, clock, webhook.hang("/hung"), subject="incident:1")
    fine = queue(store, clock, webhook.url("/fine"), subject="incident:2")
    notifier = AppriseNotifier(connect_timeout=1.0, read_timeout=1.5, total_timeout=3.0)
    d = Dispatcher(store, clock, notifier, owner="test", concurrency=4)

    async def scenario() -> None:
        d.start()
        await eventually(lambda: row(store, fine).status == "sent")
        assert webhook.count("/hung") == 1 and not attempts(store, hung)  # still waiting for an answer
        await eventually(lambda: row(store, hung).attempts == 1)
        assert row(store, hung).due_at == T0 + timedelta(seconds=10)
        clock.advance(10)
        await eventually(lambda: webhook.count("/hung") == 2)  # retried after its backoff
        await d.stop(grace=0.1)

    run(scenario())
    [attempt] = attempts(store, hung)
    assert 1.4 < attempt.duration_ms / 1000 < 1.5 + 3  # its read timeout, and room for a loaded machine
    assert attempt.error is not None and attempt.error.startswith("no answer within 1.5s")


def test_the_loop_sends_what_is_queued_while_it_sleeps(
    store: Store, clock: FakeClock, webhook: Webhook
) -> None:
    d = dispatcher(store, clock)

    async def scenario() -> None:
        d.start()
        await eventually(lambda: clock.sleeping > 0)  # its first pass found nothing: it sleeps
        await asyncio.to_thread(queue, store, clock, webhook.url("/late"))
        threading.Thread(target=d.wake).start()  # enqueuers call wake() from their own threads
        await eventually(lambda: webhook.count("/late") == 1, within=5)
        await d.stop()

    run(scenario())


@pytest.mark.parametrize("backend", ["sqlite_store", "pg_store"])
def test_two_dispatchers_deliver_a_backlog_of_200_each_exactly_once(
    backend: str, request: pytest.FixtureRequest, clock: FakeClock, webhook: Webhook
) -> None:
    store: Store = request.getfixturevalue(backend)
    for i in range(200):
        queue(store, clock, webhook.url(f"/hook/{i}"), subject=f"incident:{i}")
    stores = [Store(store.url), Store(store.url)]
    passes: list[int] = []

    def drain(own: Store) -> None:
        passes.append(dispatcher(own, clock, concurrency=4).deliver_due())

    workers = [threading.Thread(target=drain, args=(own,)) for own in stores]
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout=60)
    for own in stores:
        own.dispose()
    assert sorted(webhook.count(f"/hook/{i}") for i in range(200)) == [1] * 200
    assert sum(passes) == 200 and min(passes) > 0  # both took part
    with store.read() as s:
        statuses = set(s.scalars(select(NotificationRow.status)))
    assert statuses == {"sent"}


def test_metrics_count_results_and_time_sends(store: Store, clock: FakeClock, webhook: Webhook) -> None:
    metrics = Metrics()
    queue(store, clock, webhook.answer("/hook", 500), subject="incident:1")
    queue(store, clock, webhook.url("/other"), subject="incident:2")
    d = dispatcher(store, clock, metrics=metrics)
    d.deliver_due()
    sample = metrics.registry.get_sample_value
    assert sample("maintd_notifications_sent_total", {"result": "sent"}) == 1
    assert sample("maintd_notifications_sent_total", {"result": "retry"}) == 1
    assert sample("maintd_notification_send_seconds_count") == 2
