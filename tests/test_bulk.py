"""scheduler.bulk: rows written by the executemany helpers read back as written, on both stores.

On SQLite the helpers convert values themselves (each column type's bind processor,
a repeated value once); these tests hold that path to what Core writes.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import Table, select
from sqlalchemy.exc import IntegrityError

from maintd.scheduler.bulk import insert_rows, select_by_ids, update_by_id
from maintd.store.db import Store
from maintd.store.models import RunRow

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
