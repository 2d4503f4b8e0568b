"""The intake's group commit (maintd.intake.journal) over a database that does as the test says."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence
from datetime import datetime

import pytest

from maintd.alerts.admission import Rejected
from maintd.intake.database import Found, Row, TokenFound, Unavailable
from maintd.intake.journal import Journal
from tests.conftest import T0


class Scripted:
    """A Database whose inserts wait at a gate, and fail as told."""

    def __init__(self) -> None:
        self.batches: list[list[bytes]] = []
        self.gate = threading.Event()
        self.gate.set()
        self.entered = threading.Event()
        self.refuse: set[bytes] = set()  # bodies the database refuses (in any batch)
        self.lose_next = 0  # inserts that fail as a lost connection
        self.next_id = 0

    def insert(self, rows: Sequence[Row]) -> list[int]:
        self.entered.set()
        self.gate.wait()
        bodies = [r.body for r in rows]
        if self.lose_next:
            self.lose_next -= 1
            raise Unavailable("server closed the connection unexpectedly", lost=True)
        if self.refuse & set(bodies):
            raise Unavailable("value too long", refused=True)
        self.batches.append(bodies)
        self.next_id += len(rows)
        return list(range(self.next_id - len(rows) + 1, self.next_id + 1))

    def integration(self, key_hash: str) -> Found | None:
        return None

    def token(self, token_hash: str) -> TokenFound | None:
        return None

    def touch(self, name: str, now: datetime) -> None:
        pass

    def ping(self) -> None:
        pass

    def close(self) -> None:
        pass


def row(body: bytes) -> Row:
    return Row(T0, "native", "token:rob", None, None, body)


async def outcome(journal: Journal, body: bytes) -> int | str:
    try:
        return await journal.store(row(body))
    except Rejected as rejected:
        return f"{rejected.status} {rejected.detail}"


def test_requests_that_arrive_during_a_commit_share_the_next_one():
    database = Scripted()

    async def go() -> list[int | str]:
        journal = Journal(database)
        journal.start()
        database.gate.clear()
        first = asyncio.ensure_future(outcome(journal, b"a"))
        await asyncio.get_running_loop().run_in_executor(None, database.entered.wait)  # a is being written
        rest = [asyncio.ensure_future(outcome(journal, b)) for b in (b"b", b"c", b"d")]
        await asyncio.sleep(0)  # let them queue behind the commit in hand
        database.gate.set()
        done = await asyncio.gather(first, *rest)
        await journal.stop()
        return done

    assert asyncio.run(go()) == [1, 2, 3, 4]
    assert database.batches == [[b"a"], [b"b", b"c", b"d"]]


def test_a_batch_the_database_refuses_is_stored_request_by_request():
    database = Scripted()
    database.refuse = {b"bad"}

    async def go() -> list[int | str]:
        journal = Journal(database)
        journal.start()
        database.gate.clear()
        first = asyncio.ensure_future(outcome(journal, b"a"))
        await asyncio.get_running_loop().run_in_executor(None, database.entered.wait)
        rest = [asyncio.ensure_future(outcome(journal, b)) for b in (b"b", b"bad", b"c")]
        await asyncio.sleep(0)
        database.gate.set()
        done = await asyncio.gather(first, *rest)
        await journal.stop()
        return done

    first, b, bad, c = asyncio.run(go())
    assert (first, b, c) == (1, 2, 3)
    assert bad == "503 value too long; send the request again later (a repeat is harmless)"
    assert database.batches == [[b"a"], [b"b"], [b"c"]]


def test_a_lost_connection_is_replaced_once_then_the_requests_get_503():
    database = Scripted()

    async def go() -> list[int | str]:
        journal = Journal(database)
        journal.start()
        database.lose_next = 1
        once = await outcome(journal, b"a")  # lost, then stored on a new connection
        database.lose_next = 2
        twice = await outcome(journal, b"b")  # lost again on the new one: 503
        await journal.stop()
        return [once, twice]

    once, twice = asyncio.run(go())
    assert once == 1
    assert isinstance(twice, str) and twice.startswith("503 server closed the connection")


@pytest.mark.timeout(30)
def test_a_database_that_does_not_answer_gets_503_at_the_deadline():
    database = Scripted()
    database.gate.clear()  # every insert hangs

    async def go() -> int | str:
        journal = Journal(database, deadline=0.2)
        journal.start()
        try:
            return await outcome(journal, b"a")
        finally:
            database.gate.set()
            await journal.stop()

    assert (
        asyncio.run(go())
        == "503 the database did not answer within 0.2 s; send the request again later (a repeat is harmless)"
    )
