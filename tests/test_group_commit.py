"""Group commit: alert requests queued together share one transaction, each is answered only
after its alerts are committed, and one that cannot be stored fails alone."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from maintd.alerts.integrations import IntegrationKind
from maintd.alerts.model import AlertIn, AlertStatus
from maintd.auth import Role, create_token
from maintd.clock import FakeClock
from maintd.engine import Engine
from maintd.incidents.committer import AlertRequest, GroupCommitter
from maintd.incidents.pipeline import Delivery, ingest_requests
from maintd.plan.incidents import IncidentSettings
from maintd.store.db import Store
from maintd.store.models import AlertRow, EventRow
from tests.conftest import run
from tests.ingest_support import PLAN, client_for, make_integrations

POISON = "token:poison"  # the actor whose requests cannot be stored


def alert(instance: str, status: AlertStatus = AlertStatus.firing) -> AlertIn:
    labels = {"alertname": "DiskFull", "target": "db1", "instance": instance}
    return AlertIn(source="native", labels=labels, status=status)


class Writer:
    """The pipeline as the API runs it, noting the requests of each transaction."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.transactions: list[list[str]] = []  # the actors of each transaction tried

    def __call__(self, session: Session, requests: list[AlertRequest]) -> list[list[Delivery]]:
        self.transactions.append([r.actor for r in requests])
        batch = [(r.alerts, r.actor) for r in requests]
        done = ingest_requests(session, batch, now=self.clock.now(), settings=IncidentSettings())
        if any(r.actor == POISON for r in requests):
            raise ValueError("this request's alerts cannot be stored")  # after the others were flushed
        return done


@pytest.fixture
def other_store(store: Store) -> Iterator[Store]:
    """A second connection pool on the same database: it sees only what was committed."""
    other = Store(store.url)
    yield other
    other.dispose()


def stored(store: Store, *instances: str) -> list[str]:
    with store.read() as s:
        rows = s.scalars(select(AlertRow).order_by(AlertRow.id))
        return [r.labels["instance"] for r in rows if not instances or r.labels["instance"] in instances]


def submit_together(committer: GroupCommitter[Any], *requests: tuple[list[AlertIn], str]) -> list[Any]:
    """Queue the requests in one turn of the event loop, as concurrent HTTP requests arrive."""

    async def together() -> list[Any]:
        submits = [committer.submit(alerts, actor=actor) for alerts, actor in requests]
        return list(await asyncio.gather(*submits, return_exceptions=True))

    return list(run(together()))


def test_requests_queued_together_share_one_transaction_and_each_gets_its_own_answer(store, clock):
    writer = Writer(clock)
    committer = GroupCommitter(store, writer)
    a, b, c = submit_together(
        committer,
        ([alert("a1"), alert("a2")], "token:ann"),
        ([alert("b1")], "token:bob"),
        ([alert("c1")], "token:cat"),
    )
    assert writer.transactions == [["token:ann", "token:bob", "token:cat"]]
    assert [d.alert.labels["instance"] for d in a] == ["a1", "a2"]
    assert [(d.alert.labels["instance"], d.actor, d.outcome) for d in b + c] == [
        ("b1", "token:bob", "created"),
        ("c1", "token:cat", "created"),
    ]
    assert stored(store) == ["a1", "a2", "b1", "c1"]


def test_a_lone_request_is_written_at_once_and_a_full_transaction_leaves_the_rest_for_the_next(store, clock):
    writer = Writer(clock)
    committer = GroupCommitter(store, writer, max_alerts=3)
    submit_together(committer, ([alert("a1")], "token:ann"))
    submit_together(
        committer,
        ([alert("b1"), alert("b2")], "token:bob"),
        ([alert("c1")], "token:cat"),
        ([alert("d1")], "token:dan"),
    )
    assert writer.transactions == [["token:ann"], ["token:bob", "token:cat"], ["token:dan"]]


def test_every_answer_comes_after_its_alerts_are_committed(store, other_store, clock):
    committer = GroupCommitter(store, Writer(clock))
    seen: dict[str, list[str]] = {}

    async def post(instance: str) -> None:
        await committer.submit([alert(instance)], actor="token:ann")
        seen[instance] = stored(other_store, instance)  # read at once, through another connection

    async def many() -> None:
        await asyncio.gather(*(post(f"host{i}") for i in range(12)))

    run(many())
    assert seen == {f"host{i}": [f"host{i}"] for i in range(12)}


def test_a_request_that_cannot_be_stored_fails_alone(store, other_store, clock):
    writer = Writer(clock)
    committer = GroupCommitter(store, writer)
    good, bad, also_good = submit_together(
        committer,
        ([alert("a1")], "token:ann"),
        ([alert("p1"), alert("p2")], POISON),
        ([alert("c1")], "token:cat"),
    )
    assert isinstance(bad, ValueError)
    assert [d.outcome for d in good + also_good] == ["created", "created"]
    # The shared transaction failed; each request was then tried in a transaction of its own.
    assert writer.transactions == [["token:ann", POISON, "token:cat"], ["token:ann"], [POISON], ["token:cat"]]
    assert stored(other_store) == ["a1", "c1"]


def test_the_same_alert_in_two_requests_of_one_transaction_is_one_alert(store, clock):
    writer = Writer(clock)
    first, second = submit_together(
        GroupCommitter(store, writer), ([alert("a1")], "token:ann"), ([alert("a1")], "token:bob")
    )
    assert len(writer.transactions) == 1
    assert [first[0].outcome, second[0].outcome] == ["created", "updated"]
    assert first[0].row.id == second[0].row.id
    with store.read() as s:
        (row,) = s.scalars(select(AlertRow))
        assert row.received == 2


def test_each_alerts_events_keep_the_order_of_the_requests(store, clock):
    writer = Writer(clock)
    submit_together(
        GroupCommitter(store, writer),
        ([alert("a1"), alert("a2")], "token:ann"),
        ([alert("a1", AlertStatus.resolved)], "token:bob"),
        ([alert("a2", AlertStatus.resolved), alert("a1")], "token:cat"),
    )
    assert len(writer.transactions) == 1
    with store.read() as s:
        events = s.scalars(select(EventRow).where(EventRow.subject.like("alert:%")).order_by(EventRow.id))
        log = [(e.subject, e.kind, e.actor) for e in events]
    first, second, third = (f"alert:{i}" for i in (1, 2, 3))  # a1 fired again is a new alert
    assert log == [
        (first, "alert.firing", "token:ann"),
        (second, "alert.firing", "token:ann"),
        (first, "alert.resolved", "token:bob"),
        (second, "alert.resolved", "token:cat"),
        (third, "alert.firing", "token:cat"),
    ]


# -- through the API ------------------------------------------------------------------------------


@pytest.fixture
def engine(store, write_plan, make_engine) -> Engine:  # type: ignore[no-untyped-def]
    engine = make_engine(store, write_plan(PLAN))
    assert engine.reload().ok
    return engine


def test_concurrent_http_requests_are_each_answered_after_their_commit(engine, other_store):
    with engine.store.write() as s:
        token = create_token(s, name="rob", role=Role.responder, now=engine.clock.now(), actor="test")
    key = make_integrations(engine, prom=IntegrationKind.alertmanager)["prom"]

    with client_for(engine) as client:

        def post(i: int) -> tuple[int, list[str]]:
            labels = {"alertname": "DiskFull", "target": "db1", "instance": f"host{i}"}
            if i % 2:
                response = client.post(
                    "/api/v1/alerts", json=[{"labels": labels}], headers={"Authorization": f"Bearer {token}"}
                )
            else:
                body = {
                    "version": "4",
                    "groupKey": "{}",
                    "status": "firing",
                    "receiver": "maintd",
                    "alerts": [{"status": "firing", "labels": labels, "startsAt": "2026-11-27T00:59:00Z"}],
                }
                response = client.post(f"/integrations/alertmanager/{key}", json=body)
            return response.status_code, stored(other_store, f"host{i}")

        with ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(post, range(24)))
    assert answers == [(200, [f"host{i}"]) for i in range(24)]
