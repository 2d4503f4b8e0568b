"""maintd.intake.database against the real stores: the journal rows the intake writes with raw
SQL are the rows the drain reads through SQLAlchemy, each id answered is its own request's row,
and a failure says whether the database refused the data or the connection was lost."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import select, text

from maintd.clock import utc
from maintd.intake.database import PG_VALUES_ROWS, Postgres, Row, Unavailable, _sqlite_time, opener
from maintd.store.db import Store
from maintd.store.intake_tables import AlertIntakeRow

AT = datetime(2026, 11, 28, 17, 0, 0, 123456, tzinfo=UTC)


def rows(n: int) -> list[Row]:
    """``n`` rows that differ in every column, NULLs included."""
    return [
        Row(
            AT + timedelta(microseconds=i),
            ("native", "alertmanager", "pagerduty")[i % 3],
            f"integration:sender-{i}",
            f"sender-{i}" if i % 2 else None,
            f"dedup-{i}" if i % 3 == 2 else None,
            f'[{{"labels": {{"i": "{i}"}}}}]'.encode() + bytes([0, 255, i % 256]),
        )
        for i in range(n)
    ]


def stored(store: Store) -> dict[int, Row]:
    with store.read() as session:
        found = session.scalars(select(AlertIntakeRow).order_by(AlertIntakeRow.id))
        return {
            r.id: Row(r.received_at, r.source, r.actor, r.integration, r.dedup_key, bytes(r.body))
            for r in found
        }


@pytest.mark.parametrize("n", [1, 3, PG_VALUES_ROWS, PG_VALUES_ROWS + 1, 500])
def test_each_id_answered_is_the_row_of_its_own_request(store: Store, n: int):
    database = opener(store.url)(store.url)
    try:
        first = database.insert(rows(2))  # ids already taken: the next ones do not start at 1
        given = rows(n)
        ids = database.insert(given)
    finally:
        database.close()
    found = stored(store)
    assert len(ids) == n and min(ids) > max(first)
    assert [found[i] for i in ids] == given  # same order, every column as written


def test_ids_follow_the_order_of_arrival_across_commits(store: Store):
    database = opener(store.url)(store.url)
    try:
        batches = [database.insert(rows(k)) for k in (4, 1, 7)]
    finally:
        database.close()
    flat = [i for batch in batches for i in batch]
    assert flat == sorted(flat) and len(set(flat)) == 12  # the drain takes them in this order


def test_a_value_postgresql_refuses_is_refused_and_stores_nothing(pg_store: Store):
    database = Postgres(pg_store.url)
    too_long = rows(3)
    too_long[1] = too_long[1]._replace(actor="x" * 201)  # the column holds 200
    try:
        with pytest.raises(Unavailable) as refused:
            database.insert(too_long)
        assert refused.value.refused and not refused.value.lost
        assert "too long" in refused.value.reason
        assert database.insert(rows(1))  # the connection still works
    finally:
        database.close()
    assert len(stored(pg_store)) == 1  # none of the refused statement's rows


def test_a_connection_lost_since_the_last_statement_is_reported_lost_then_replaced(pg_store: Store):
    database = Postgres(pg_store.url)
    try:
        database.ping()
        with pg_store.engine.begin() as conn:
            conn.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                    " WHERE datname = current_database() AND pid <> pg_backend_pid()"
                    " AND application_name = ''"
                )
            )
        with pytest.raises(Unavailable) as lost:
            database.insert(rows(1))
        assert lost.value.lost and not lost.value.refused
        assert len(database.insert(rows(2))) == 2  # a new connection
    finally:
        database.close()
    assert len(stored(pg_store)) == 2


def test_reads_leave_no_transaction_open(pg_store: Store):
    """An idle transaction would hold back VACUUM on the journal the drain keeps deleting from."""
    database = Postgres(pg_store.url)
    try:
        assert database.integration("no such key hash") is None
        assert database.token("no such token hash") is None
        with pg_store.engine.connect() as conn:
            idle = conn.scalar(
                text(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                    " AND state LIKE 'idle in transaction%'"
                )
            )
        assert idle == 0
    finally:
        database.close()


def test_a_time_in_any_offset_is_stored_as_the_same_instant(store: Store):
    plus_two = AT.astimezone(timezone(timedelta(hours=2)))
    given = [r._replace(received_at=at) for r, at in zip(rows(2), (AT, plus_two), strict=True)]
    database = opener(store.url)(store.url)
    try:
        ids = database.insert(given)
    finally:
        database.close()
    found = stored(store)
    assert [found[i].received_at for i in ids] == [AT, AT]


def test_sqlite_times_are_the_text_sqlalchemy_stores_and_naive_ones_are_utc():
    plus_two = AT.astimezone(timezone(timedelta(hours=2)))
    for at in (AT, plus_two, AT.replace(tzinfo=None), AT.replace(microsecond=0)):
        assert _sqlite_time(at) == f"{utc(at):%Y-%m-%d %H:%M:%S.%f}", at
