"""Fault test: a notifier endpoint that hangs, and one that answers 500, for ten minutes.

Real receivers on loopback: a TCP server that accepts connections and never answers, a
webhook answering 500 to everything, a healthy webhook and an SMTP server for the fallback
channels and for other incidents' pages. The ten minutes pass on the injected clock; each
try at the hanging endpoint costs its real per-attempt timeout (1.5 s here) and no more.

What must hold: each page to a failing endpoint is tried on the retry policy's backoff
(10 s, 30 s, 1 min, 2 min), given up on after five attempts and delivered on its fallback
channel; once the endpoint is known to hang it holds two of the four send slots at most
(``notify.bulkhead``), so other incidents' pages, on other channels, go out at once, even
while sends to it wait for their timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta

import pytest
from sqlalchemy import select

from maintd.clock import FakeClock
from maintd.notify.bulkhead import Bulkhead
from maintd.notify.dispatcher import Dispatcher
from maintd.notify.transport import AppriseNotifier
from maintd.store.db import Store
from maintd.store.models import EventRow, NotificationAttemptRow, NotificationRow
from tests.conftest import T0, run
from tests.notify_support import BlackHole, Mailbox, Webhook, queue, webhook_server

READ_TIMEOUT = 1.5  # seconds one try at the hanging endpoint waits (the other pages go out meanwhile)
TEN_MINUTES = T0 + timedelta(minutes=10)
BACKOFF = [timedelta(seconds=s) for s in (10, 30, 60, 120)]


@pytest.fixture
def black_hole() -> Iterator[BlackHole]:
    hole = BlackHole()
    yield hole
    hole.close()


@pytest.fixture
def failing() -> Iterator[Webhook]:
    with webhook_server() as hook:
        yield hook


def attempts(store: Store, row_id: int) -> list[NotificationAttemptRow]:
    with store.read() as s:
        query = select(NotificationAttemptRow).where(NotificationAttemptRow.notification_id == row_id)
        return list(s.scalars(query.order_by(NotificationAttemptRow.id)))


def notification(store: Store, row_id: int) -> NotificationRow:
    with store.read() as s:
        found = s.get(NotificationRow, row_id)
        assert found is not None
        return found


async def eventually(condition: Callable[[], bool], within: float = 15.0) -> None:
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


def test_an_endpoint_hanging_or_answering_500_for_ten_minutes_falls_back_and_blocks_nothing(
    pg_store: Store,
    clock: FakeClock,
    webhook: Webhook,
    mailbox: Mailbox,
    black_hole: BlackHole,
    failing: Webhook,
) -> None:
    store = pg_store
    hung = [
        queue(
            store, clock, black_hole.url(f"/hook/{i}"), webhook.url(f"/fallback/{i}"), subject=f"incident:{i}"
        )
        for i in (1, 2, 3, 4)
    ]
    erring = queue(
        store, clock, failing.answer("/p", *[500] * 50), webhook.url("/fallback/5"), subject="incident:5"
    )
    notifier = AppriseNotifier(connect_timeout=1.0, read_timeout=READ_TIMEOUT, total_timeout=READ_TIMEOUT + 1)
    # apprise loads its table of plugins on the first mailto: (0.2 s, 1-2 s on a busy machine),
    # and json:// goes through maintd's own webhook sender: warm both, or the first page by mail
    # can miss the hanging tries' window below.
    notifier.send(webhook.url("/warm-up"), "warm-up", "loads the webhook sender")
    notifier.send(mailbox.url("warm@example.test"), "warm-up", "loads apprise's plugins")
    d = Dispatcher(store, clock, notifier, owner="test", concurrency=4)  # at most 2 sends per endpoint
    others: dict[int, datetime] = {}  # other incidents' pages: row -> when queued

    async def page_elsewhere(n: int) -> int:
        url = mailbox.url(f"bob{n}@example.test") if n % 2 else webhook.url(f"/other/{n}")
        row_id = await asyncio.to_thread(queue, store, clock, url, subject=f"incident:{100 + n}")
        others[row_id] = clock.now()
        d.wake()
        return row_id

    def idle() -> bool:
        return d.in_flight == 0 and clock.asleep_until_later() > 0

    def next_due() -> datetime | None:
        with store.read() as s:
            return d.next_due_at(s)

    async def scenario() -> None:
        d.start()
        # The first tries, before anything is known of the endpoint: each waits for its timeout.
        await eventually(lambda: sum(len(attempts(store, r)) for r in hung) == 4)
        assert all(notification(store, r).due_at == T0 + BACKOFF[0] for r in hung)
        # Their retries: the endpoint is known to hang now, so it holds two sends and no more.
        await eventually(idle)
        clock.set(T0 + BACKOFF[0])
        await eventually(lambda: black_hole.accepted == 6)
        first = [await page_elsewhere(0), await page_elsewhere(1)]
        await eventually(lambda: all(notification(store, r).status == "sent" for r in first))
        assert d.bulkhead.busy(black_hole.url()) == 2, "the other pages went out while those sends waited"
        assert sum(len(attempts(store, r)) for r in hung) == 4, "no retry at the hanging endpoint ended yet"

        # Ten minutes on the injected clock, from one due time to the next; another incident
        # is paged at minutes 1, 3, 5, 7 and 9.
        marks = [T0 + timedelta(minutes=m) for m in (1, 3, 5, 7, 9)]
        while clock.now() < TEN_MINUTES:
            await eventually(idle)
            due = await asyncio.to_thread(next_due)
            stop = min(d for d in (due, marks[0] if marks else None, TEN_MINUTES) if d is not None)
            if stop > clock.now():
                clock.set(stop)
            if marks and marks[0] <= clock.now():
                row_id = await page_elsewhere(len(others))
                # Woken but not yet claimed looks idle too: the clock must not move before it goes.
                await eventually(lambda row_id=row_id: notification(store, row_id).status == "sent")
                marks.pop(0)
        await d.stop(grace=0.1)

    run(scenario())

    for row_id in [*hung, erring]:
        tries = attempts(store, row_id)
        first_channel = [a for a in tries if a.channel == 0]
        assert [a.ok for a in first_channel] == [False] * 5, row_id
        # The retry policy's backoff between tries (deferred sends may add a second or so).
        gaps = [b.at - a.at for a, b in itertools.pairwise(first_channel)]
        assert all(
            want <= got <= want + timedelta(seconds=5) for want, got in zip(BACKOFF, gaps, strict=True)
        )
        assert [(a.channel, a.ok) for a in tries[5:]] == [(1, True)]  # then the fallback, once
        assert notification(store, row_id).status == "sent"
    for row_id in hung:
        for a in attempts(store, row_id)[:5]:
            assert a.error is not None and a.error.startswith(f"no answer within {READ_TIMEOUT:.1f}s"), (
                a.error
            )
            assert a.duration_ms / 1000 < READ_TIMEOUT + 1.5, "each try is bounded by its timeout"
    assert all((a.error or "").startswith("HTTP 500") for a in attempts(store, erring)[:5])
    # Nothing tried more often than the policy says: five connections per page, five requests.
    assert black_hole.accepted == 20 and failing.count("/p") == 5
    assert [webhook.count(f"/fallback/{i}") for i in (1, 2, 3, 4, 5)] == [1] * 5

    # Every other incident's page went out at the time it was queued, on its own channel.
    assert len(others) == 7
    for row_id, queued in others.items():
        done = notification(store, row_id)
        assert (done.status, done.sent_at) == ("sent", queued), row_id
    assert sorted(m.recipients[0] for m in mailbox.messages) == [
        "bob1@example.test",
        "bob3@example.test",
        "bob5@example.test",
        "warm@example.test",
    ]
    with store.read() as s:
        gave_up = s.scalars(select(EventRow.payload).where(EventRow.kind == "notification.failed")).all()
    assert len(gave_up) == 5 and all(p["error"].startswith("gave up after 5 attempts") for p in gave_up)


def test_only_an_endpoint_that_hangs_is_limited_and_an_answer_lifts_the_limit() -> None:
    bulkhead = Bulkhead(2, slow_after=60.0)
    hook, other = "json://127.0.0.1:9000/a", "json://127.0.0.1:9001/a"
    with contextlib.ExitStack() as burst:  # a healthy endpoint: a burst of eight all go
        assert all(burst.enter_context(bulkhead.slot(hook)).allowed for _ in range(8))
    with bulkhead.slot(hook) as send:
        send.ended(timed_out=True)
    with contextlib.ExitStack() as stack:  # now suspect: two sends at once, not three
        sends = [stack.enter_context(bulkhead.slot(hook + f"/{i}")) for i in range(3)]
        assert [s.allowed for s in sends] == [True, True, False]
        assert stack.enter_context(bulkhead.slot(other)).allowed  # another endpoint is not limited
        sends[0].ended(timed_out=False)  # an answer
    with contextlib.ExitStack() as stack:
        assert all(stack.enter_context(bulkhead.slot(hook)).allowed for _ in range(3))


def test_a_send_waiting_longer_than_slow_after_makes_its_endpoint_suspect() -> None:
    bulkhead = Bulkhead(1, slow_after=0.0)  # any send in flight has waited "too long"
    with bulkhead.slot("mailto://smtp.example.test:25") as first:
        assert first.allowed
        with bulkhead.slot("mailto://smtp.example.test:25?to=b@example.test") as second:
            assert not second.allowed
    assert bulkhead.busy("mailto://smtp.example.test:25") == 0
