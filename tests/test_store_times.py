"""store.base.UTCDateTime: SQLite's one-step conversions write and read exactly what the two
steps (utc() and the dialect's own DATETIME processor) do, and timestamps round-trip on both stores.

SQLite compares timestamps as text (``due_at <= :now``), so a written value must be the very same
string, not merely the same instant.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, cast

import pytest
from sqlalchemy import TypeDecorator, select
from sqlalchemy.dialects import sqlite

from maintd.store.base import UTCDateTime
from maintd.store.db import Store
from maintd.store.models import RunRow

DIALECT = sqlite.dialect()
TYPE = cast(UTCDateTime, UTCDateTime().dialect_impl(DIALECT))
PLUS2 = timezone(timedelta(hours=2), "CEST")
Processor = Callable[[Any], Any]


class _SubDateTime(datetime):
    pass


def _processor(made: Processor | None) -> Processor:
    assert made is not None
    return made


FAST_BIND = _processor(TYPE.bind_processor(DIALECT))
FAST_RESULT = _processor(TYPE.result_processor(DIALECT, None))
# TypeDecorator's own: process_bind_param / process_result_value, then the dialect's DATETIME.
GENERAL_BIND = _processor(TypeDecorator.bind_processor(TYPE, DIALECT))
GENERAL_RESULT = _processor(TypeDecorator.result_processor(TYPE, DIALECT, None))


BIND_CASES = [
    datetime(2026, 11, 27, 1, 2, 3, 4, tzinfo=UTC),
    datetime(2026, 11, 27, 1, 2, 3, tzinfo=UTC),  # no microseconds: still six zeros
    datetime(2026, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC),
    datetime(1, 1, 1, tzinfo=UTC),  # a year under 1000 (padded to four digits)
    datetime(999, 5, 6, 7, 8, 9, 10, tzinfo=UTC),
    datetime(9999, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC),
    datetime(2026, 11, 27, 3, 2, 3, 4, tzinfo=PLUS2),  # another zone: converted to UTC
    datetime(2026, 11, 27, 1, 2, 3, 4, tzinfo=timezone(timedelta(0), "also UTC")),
    datetime(2026, 11, 27, 1, 2, 3, 4),  # naive: taken as UTC
    _SubDateTime(2026, 11, 27, 1, 2, 3, 4, tzinfo=UTC),
    None,
]


@pytest.mark.parametrize("value", BIND_CASES, ids=repr)
def test_sqlite_writes_the_text_the_two_steps_write(value: datetime | None) -> None:
    written = FAST_BIND(value)
    assert written == GENERAL_BIND(value)
    assert type(written) is type(GENERAL_BIND(value))


RESULT_CASES = [
    "2026-11-27 01:02:03.000004",
    "2026-11-27 01:02:03.000000",
    "2026-11-27 01:02:03",  # as SQLite's CURRENT_TIMESTAMP writes it
    "2026-11-27T01:02:03.5",
    "2026-11-27 03:02:03.000004+02:00",  # text with an offset of its own
    "2026-11-27 01:02:03Z",
    "2026-11-27",
    None,
]


@pytest.mark.parametrize("text", RESULT_CASES, ids=repr)
def test_sqlite_reads_the_datetime_the_two_steps_read(text: str | None) -> None:
    read = FAST_RESULT(text)
    expected = GENERAL_RESULT(text)
    assert read == expected
    if expected is not None:
        assert read.utcoffset() == timedelta(0) and read.tzinfo is UTC


def test_text_that_is_not_a_timestamp_is_refused_alike() -> None:
    with pytest.raises(ValueError):
        GENERAL_RESULT("yesterday")
    with pytest.raises(ValueError):
        FAST_RESULT("yesterday")


def test_timestamps_round_trip_through_the_store_as_aware_utc(store: Store) -> None:
    times = [
        datetime(2026, 11, 27, 1, 2, 3, 4, tzinfo=UTC),
        datetime(2026, 11, 27, 3, 2, 3, tzinfo=PLUS2),
        datetime(2026, 11, 27, 1, 2, 3, 999_999),
    ]
    with store.write() as session:
        for i, at in enumerate(times):
            session.add(
                RunRow(
                    id=f"r{i}",
                    task="t",
                    target="x",
                    kind="k",
                    trigger="schedule",
                    scheduled_for=at,
                    started_at=at,
                    state="running",
                    owner="test",
                )
            )
    with store.read() as session:
        got = dict(session.execute(select(RunRow.id, RunRow.started_at)).all())
        # Compared in the database too: the text SQLite holds must order as the instants do.
        later = session.scalars(select(RunRow.id).where(RunRow.started_at > times[0]).order_by(RunRow.id))
        assert list(later) == ["r2"]
    for i, at in enumerate(times):
        expected = at.replace(tzinfo=UTC) if at.tzinfo is None else at
        assert got[f"r{i}"] == expected and got[f"r{i}"].tzinfo is UTC
