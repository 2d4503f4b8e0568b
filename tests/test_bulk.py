"""store.bulk: rows written by the helpers read back as written, on both stores.

On SQLite the helpers convert values themselves (each column type's bind processor,
a repeated value once); on PostgreSQL many rows go in (and change) as one statement
from unnest of binary arrays. These tests hold both paths to what Core writes.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, cast

import pytest
from sqlalchemy import Table, event, select
from sqlalchemy.exc import IntegrityError

from maintd.store.bulk import insert_rows, select_by_ids, update_by_id
from maintd.store.db import Store
from maintd.store.models import AlertRow, EventRow, RunRow

RUNS: Table = RunRow.__table__  # type: ignore[assignment]
T = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
PLUS2 = timezone(timedelta(hours=2))


def _run(run_id: str, **values: object) -> dict[str, object]:
    row: dict[str, object] = {
        "id": run_id,
        "task": "probe",
        "target": f"web-{run_id}",
        "kind": "http",
        "trigger": "schedule",
        "attempt": 1,
        "scheduled_for": T,
        "window_end": None,
        "started_at": T,
        "state": "running",
        "in_window": True,
        "dry_run": False,
        "preventive": False,
        "output": "",
        "metrics": {},
        "owner": "test",
    }
    row.update(values)
    return row


def test_inserted_and_updated_rows_read_back_as_written(store: Store) -> None:
    # The same instant given in another zone, a NULL next to a value, shared and distinct
    # timestamps, booleans both ways, JSON of several shapes: each must come back as it went in.
    rows = [
        _run("r1", window_end=T + timedelta(hours=1), metrics={"time": 0.5}),
        _run("r2", started_at=T.astimezone(PLUS2), dry_run=True, in_window=False),
        _run("r3", started_at=T + timedelta(microseconds=1), output="é ✓ 'quoted'"),
    ]
    with store.write() as session:
        insert_rows(session, RUNS, rows)
    with store.write() as session:
        update_by_id(
            session,
            RUNS,
            [
                {"id": "r1", "state": "finished", "status": "ok", "finished_at": T + timedelta(seconds=1)},
                {"id": "r3", "state": "finished", "status": "critical", "finished_at": T},
                {"id": "r2", "metrics": {"json:$.a": 1.0, "nested": [1, 2]}},
            ],
        )
    with store.read() as session:
        got = {r.id: r for r in session.scalars(select(RunRow))}
    assert got["r1"].window_end == T + timedelta(hours=1)
    assert got["r1"].metrics == {"time": 0.5}
    assert (got["r1"].state, got["r1"].status) == ("finished", "ok")
    assert got["r1"].finished_at == T + timedelta(seconds=1)
    assert got["r2"].started_at == T and got["r2"].started_at.tzinfo is not None
    assert (got["r2"].dry_run, got["r2"].in_window) == (True, False)
    assert got["r2"].window_end is None and got["r2"].finished_at is None
    assert got["r2"].metrics == {"json:$.a": 1.0, "nested": [1, 2]}
    assert got["r2"].state == "running"
    assert got["r3"].started_at == T + timedelta(microseconds=1)
    assert got["r3"].output == "é ✓ 'quoted'"
    assert (got["r3"].status, got["r3"].finished_at) == ("critical", T)
    assert got["r3"].metrics == {}


def test_a_failed_statement_writes_nothing_of_its_transaction(store: Store) -> None:
    with store.write() as session:
        insert_rows(session, RUNS, [_run("r1")])
    with pytest.raises(IntegrityError), store.write() as session:
        update_by_id(session, RUNS, [{"id": "r1", "state": "finished"}])
        insert_rows(session, RUNS, [_run("r1")])  # the same primary key again
    with store.read() as session:
        assert session.scalar(select(RunRow.state).where(RunRow.id == "r1")) == "running"


def test_one_object_shared_by_every_row_is_written_to_each(store: Store) -> None:
    # The claim hands every run the same empty-metrics dict (converted once on SQLite); a shared
    # non-empty object and, next to it, equal but distinct dicts must read back alike.
    shared_empty: dict[str, object] = {}
    shared = {"time": 0.25, "tags": ["a", "b"]}
    with store.write() as session:
        insert_rows(session, RUNS, [_run(f"e{i}", metrics=shared_empty) for i in range(3)])
        insert_rows(session, RUNS, [_run(f"s{i}", metrics=shared) for i in range(3)])
        insert_rows(session, RUNS, [_run(f"d{i}", metrics={"i": i}) for i in range(3)])
    with store.write() as session:
        update_by_id(session, RUNS, [{"id": f"e{i}", "metrics": shared} for i in range(2)])
    with store.read() as session:
        got: dict[str, object] = dict(session.execute(select(RunRow.id, RunRow.metrics)).all())
    assert got == {
        "e0": shared,
        "e1": shared,
        "e2": {},
        **{f"s{i}": shared for i in range(3)},
        **{f"d{i}": {"i": i} for i in range(3)},
    }


def test_an_id_changed_twice_in_one_call_ends_with_its_last_change(store: Store) -> None:
    # One UPDATE from unnest applies one of several source rows matching a row: such calls keep
    # the executemany, in which the last change wins.
    with store.write() as session:
        insert_rows(session, RUNS, [_run("r1"), _run("r2")])
    with store.write() as session:
        changes = [{"id": "r1", "state": "a"}, {"id": "r2", "state": "b"}, {"id": "r1", "state": "c"}]
        update_by_id(session, RUNS, changes)
    with store.read() as session:
        assert dict(session.execute(select(RunRow.id, RunRow.state)).all()) == {"r1": "c", "r2": "b"}


@contextmanager
def statements_sent(store: Store) -> Iterator[list[str]]:
    """The SQL the store's engine sends while the block runs."""
    statements: list[str] = []

    def seen(conn: Any, cursor: Any, statement: str, params: Any, context: Any, executemany: bool) -> None:
        statements.append(statement)

    event.listen(store.engine, "before_cursor_execute", seen)
    try:
        yield statements
    finally:
        event.remove(store.engine, "before_cursor_execute", seen)


def test_many_rows_are_one_statement_each_way_on_postgresql(pg_store: Store) -> None:
    with statements_sent(pg_store) as statements, pg_store.write() as session:
        insert_rows(session, RUNS, [_run(f"r{i}") for i in range(40)])
        update_by_id(session, RUNS, [{"id": f"r{i}", "state": f"s{i}"} for i in range(40)])
    writes = [s for s in statements if s.startswith(("INSERT", "UPDATE"))]
    assert [s.split()[0] for s in writes] == ["INSERT", "UPDATE"]
    assert all("unnest(" in s for s in writes)
    with statements_sent(pg_store) as statements, pg_store.write() as session:
        # An id twice: which change an UPDATE from unnest keeps is the join's choice, so the
        # plain statement, once a row, in order.
        update_by_id(session, RUNS, [{"id": "r0", "state": "x"}, {"id": "r0", "state": "s0"}])
    assert [s for s in statements if "unnest(" in s] == []
    with pg_store.read() as session:
        states = dict(session.execute(select(RunRow.id, RunRow.state)).all())
    assert states == {f"r{i}": f"s{i}" for i in range(40)}


def test_rows_selected_by_id_come_back_converted_in_chunks_and_only_those_asked_for(store: Store) -> None:
    # More ids than one SQLite statement takes at once, ids that are not there, one asked twice.
    rows = [_run(f"r{i:04d}", started_at=T + timedelta(seconds=i), window_end=None) for i in range(1200)]
    rows[7]["window_end"] = T.astimezone(PLUS2)
    with store.write() as session:
        insert_rows(session, RUNS, rows)
    wanted = [f"r{i:04d}" for i in range(0, 1200, 2)] + ["r0007", "nope", "r0000"]
    with store.read() as session:
        got = select_by_ids(session, RUNS, ("id", "started_at", "window_end", "dry_run"), wanted)
        assert select_by_ids(session, RUNS, ("id",), []) == []
    by_id = {r[0]: r for r in got}
    assert set(by_id) == {f"r{i:04d}" for i in range(0, 1200, 2)} | {"r0007"}
    assert all(type(r) is tuple for r in got)
    assert by_id["r0002"] == ("r0002", T + timedelta(seconds=2), None, False)
    assert by_id["r0007"][2] == T and by_id["r0007"][2].tzinfo is UTC


# -- the pipeline's tables: alerts and events, in one unnest statement on PostgreSQL ------------

AT = datetime(2026, 11, 29, 4, 0, 0, 123456, tzinfo=UTC)
EVENTS = cast(Table, EventRow.__table__)
ALERTS = cast(Table, AlertRow.__table__)


def events(n: int) -> list[dict[str, Any]]:
    return [
        {
            "at": AT + timedelta(seconds=n - i),  # newest first: the ids must follow the list, not the times
            "kind": f"bulk.test{i % 3}",
            "subject": f'task:"quoted", {{braced}} {i}',
            "actor": "system",
            "payload": {"i": i, "nested": {"list": [i, None, "x"]}, "text": 'a,b}{\\"'},
        }
        for i in range(n)
    ]


def stored_events(store: Store) -> list[dict[str, Any]]:
    with store.read() as session:
        found = session.scalars(
            select(EventRow).where(EventRow.kind.startswith("bulk.")).order_by(EventRow.id)
        )
        return [
            {"at": r.at, "kind": r.kind, "subject": r.subject, "actor": r.actor, "payload": r.payload}
            for r in found
        ]


@pytest.mark.parametrize("n", [0, 1, 2, 700])
def test_rows_are_stored_as_given_in_their_order(store: Store, n: int):
    given = events(n)
    with store.write() as session:
        insert_rows(session, EVENTS, given)
    assert stored_events(store) == given


def test_columns_all_null_and_explicit_ids_are_stored(store: Store):
    rows = [
        {
            "id": 9000 + i,
            "fingerprint": f"{i:016x}",
            "dedup_key": f"{i:016x}",
            "source": "native",
            "integration": None,  # NULL in every row: an array of nothing but NULLs
            "status": "firing",
            "severity": "warning",
            "priority": "P3",
            "summary": "",
            "labels": {"alertname": "Bulk", "i": str(i)},
            "annotations": {},
            "starts_at": AT,
            "ends_at": None,
            "last_received_at": AT + timedelta(microseconds=i),
            "received": 1,
            "acknowledged_at": None,
            "muted_by": None,
            "incident_id": None,
        }
        for i in range(3)
    ]
    with store.write() as session:
        insert_rows(session, ALERTS, rows)
    with store.read() as session:
        found = session.scalars(select(AlertRow).order_by(AlertRow.id)).all()
    assert [{c: getattr(r, c) for c in rows[0]} for r in found] == rows


def test_one_statement_on_postgresql_for_any_number_of_rows(pg_store: Store):
    with statements_sent(pg_store) as statements:
        for n in (2, 50):
            with pg_store.write() as session:
                insert_rows(session, EVENTS, events(n))
    inserts = [s for s in statements if s.startswith("INSERT")]
    assert len(inserts) == 2 and inserts[0] == inserts[1] and "unnest(" in inserts[0]
    assert len(stored_events(pg_store)) == 52
