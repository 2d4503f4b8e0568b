"""postgres-upkeep on the machine's PostgreSQL: bloat made here, then vacuumed, reindexed, analyzed."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict

from maintd.checks.base import CheckResult, Status
from maintd.clock import FakeClock
from tests.conftest import PG_ADMIN_URL, run
from tests.kinds import make_target, run_kind
from tests.postgres_support import free_port

_ADMIN = conninfo_to_dict(PG_ADMIN_URL)
HOST, PORT, USER = (
    str(_ADMIN.get("host", "127.0.0.1")),
    int(str(_ADMIN.get("port", 5432))),
    str(_ADMIN.get("user", "postgres")),
)


def admin(statement: str | sql.Composed) -> None:
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(statement)


@pytest.fixture
def db() -> Iterator[str]:
    name = f"maintd_upkeep_{uuid.uuid4().hex[:8]}"
    try:
        admin(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    except psycopg.Error as exc:
        pytest.fail(f"PostgreSQL is required at {PG_ADMIN_URL}: {exc}")
    yield name
    admin(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def connect(db: str, user: str = USER) -> psycopg.Connection[tuple[Any, ...]]:
    return psycopg.connect(host=HOST, port=PORT, user=user, dbname=db, autocommit=True)


def execute(db: str, *statements: str) -> None:
    with connect(db) as conn:
        for statement in statements:
            conn.execute(statement)
        conn.execute("SELECT pg_stat_force_next_flush()")


def one(db: str, query: str) -> Any:
    with connect(db) as conn:
        row = conn.execute(query).fetchone()
        assert row is not None
        return row[0]


def wait_for(what: str, condition: Callable[[], bool], timeout: float = 10) -> None:
    """Statistics reach pg_stat_* when the writing session goes idle: poll, bounded."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def dead_tuples(db: str, table: str) -> int:
    return int(one(db, f"SELECT n_dead_tup FROM pg_stat_user_tables WHERE relname = '{table}'"))


def modified(db: str, table: str) -> int:
    return int(one(db, f"SELECT n_mod_since_analyze FROM pg_stat_user_tables WHERE relname = '{table}'"))


def size(db: str, relation: str) -> int:
    return int(one(db, f"SELECT pg_relation_size('{relation}')"))


def index_exists(db: str, name: str) -> bool:
    return bool(one(db, f"SELECT count(*) FROM pg_class WHERE relname = '{name}'"))


def make_dead_tuples(db: str, table: str, rows: int = 50_000) -> None:
    """``rows`` rows, nine in ten deleted, autovacuum off so only upkeep cleans them."""
    execute(
        db,
        f"CREATE TABLE {table} (id int, pad text) WITH (autovacuum_enabled = false)",
        f"INSERT INTO {table} SELECT i, repeat('x', 40) FROM generate_series(1, {rows}) i",
        f"DELETE FROM {table} WHERE id % 10 <> 0",
    )
    wait_for(f"{table}'s dead tuples in pg_stat", lambda: dead_tuples(db, table) >= rows * 9 // 10)


def make_bloated_index(db: str, table: str = "sparse") -> None:
    """A primary key left with a tenth of its entries on every leaf page: VACUUM cannot shrink it."""
    execute(
        db,
        f"CREATE TABLE {table} (id int PRIMARY KEY) WITH (autovacuum_enabled = false)",
        f"INSERT INTO {table} SELECT generate_series(1, 100000)",
        f"DELETE FROM {table} WHERE id % 10 <> 0",
    )
    # The DELETE's statistics first, or they land after VACUUM's and count the dead tuples again.
    wait_for(f"{table}'s dead tuples in pg_stat", lambda: dead_tuples(db, table) == 90000)
    execute(db, f"VACUUM (ANALYZE) {table}")
    wait_for(f"{table} vacuumed in pg_stat", lambda: dead_tuples(db, table) == 0)


def upkeep(
    db: str,
    *,
    dry_run: bool = False,
    clock: FakeClock | None = None,
    user: str = USER,
    port: int = PORT,
    **params: Any,
) -> CheckResult:
    target = make_target(
        kind="database", connection={"host": HOST, "port": port, "user": user, "database": db}
    )
    clock = clock or FakeClock(datetime.now(UTC))
    result: CheckResult = run(
        run_kind("postgres-upkeep", params, target, dry_run=dry_run, clock=clock, timeout=60)
    )
    return result


def lines(result: CheckResult) -> list[str]:
    return result.output.splitlines()


def test_a_table_with_many_dead_tuples_is_vacuumed_and_its_dead_tuples_drop(db: str):
    make_dead_tuples(db, "churn")
    before = size(db, "churn")
    result = upkeep(db, min_table_size="64KiB")
    assert result.status is Status.warning, result.output  # the space VACUUM keeps for new rows
    head, done, kept = lines(result)
    assert (
        head
        == f"PostgreSQL {USER}@{HOST}:{PORT}/{db}: 1 tables, 0 indexes looked at; bloat by estimate: "
        + ("pgstattuple is not installed in this database")
    )
    assert done.startswith("vacuum public.churn: dead tuples 45000 -> 0, size ")
    assert kept.startswith("public.churn: bloat ") and kept.endswith(
        "after VACUUM (warning at 50%); VACUUM FULL or pg_repack in a window returns it"
    )
    assert dead_tuples(db, "churn") == 0
    (change,) = result.changes
    assert (change.action, change.target) == ("vacuum", "public.churn")
    assert change.detail["before"]["dead_tuples"] == 45000 and change.detail["after"]["dead_tuples"] == 0
    assert change.detail["before"]["size_bytes"] == before and change.detail["before"]["dead_percent"] == 90.0
    assert result.metrics["vacuum_done"] == 1 and result.metrics["vacuum_dead_tuples_before"] == 45000
    assert result.metrics["vacuum_dead_tuples_after"] == 0

    again = upkeep(db, min_table_size="64KiB")
    assert lines(again)[1:] == ["nothing over the thresholds"] and not again.changes  # idempotent


@pytest.mark.parametrize("method", ["pgstattuple", "estimate"])
def test_a_bloated_index_is_reindexed_concurrently_and_shrinks(db: str, method: str):
    if method == "pgstattuple":
        execute(db, "CREATE EXTENSION pgstattuple")
    make_bloated_index(db)
    before = size(db, "sparse_pkey")
    result = upkeep(db, bloat_method=method)
    assert result.status is Status.ok, result.output
    assert lines(result)[0].endswith(f"1 tables, 1 indexes looked at; bloat by {method}")
    (line,) = lines(result)[1:]
    assert line.startswith("reindex public.sparse_pkey: size 2.2 MiB -> ")
    after = size(db, "sparse_pkey")
    assert after < before / 5
    (change,) = result.changes
    assert change.detail["before"]["size_bytes"] == before and change.detail["after"]["size_bytes"] == after
    assert change.detail["before"]["bloat_percent"] > 80 > 20 > change.detail["after"]["bloat_percent"]
    assert result.metrics["reindex_size_bytes_after"] == after
    assert not upkeep(db, bloat_method=method).changes


def test_index_bloat_that_shows_only_after_vacuum_is_reindexed_in_the_same_run(db: str):
    # Dead tuples and an index over them: before VACUUM the index's pages hold the dead entries;
    # after it, nine tenths of every leaf is free space. One run does both; the next has nothing.
    execute(
        db,
        "CREATE TABLE sparse (id int PRIMARY KEY) WITH (autovacuum_enabled = false)",
        "INSERT INTO sparse SELECT generate_series(1, 100000)",
        "DELETE FROM sparse WHERE id % 10 <> 0",
    )
    wait_for("sparse's dead tuples in pg_stat", lambda: dead_tuples(db, "sparse") == 90000)
    before = size(db, "sparse_pkey")
    result = upkeep(db)
    assert [(c.action, c.target) for c in result.changes] == [
        ("vacuum", "public.sparse"),
        ("reindex", "public.sparse_pkey"),
    ], result.output
    assert size(db, "sparse_pkey") < before / 5
    assert result.metrics["operations_planned"] == 2 and result.metrics["operations_failed"] == 0
    wait_for("sparse vacuumed in pg_stat", lambda: dead_tuples(db, "sparse") == 0)
    assert not upkeep(db).changes


def test_an_invalid_leftover_ccnew_index_is_dropped_and_a_valid_one_kept(db: str):
    execute(
        db,
        "CREATE TABLE t (id int, val int)",
        "INSERT INTO t SELECT i, i % 3 FROM generate_series(1, 1000) i",
        "CREATE INDEX t_id_ccnew ON t (id)",  # valid: someone's own name, not a leftover
    )
    with pytest.raises(psycopg.errors.UniqueViolation):  # a failed concurrent build stays, invalid
        execute(db, "CREATE UNIQUE INDEX CONCURRENTLY t_val_idx_ccnew ON t (val)")
    assert not one(db, "SELECT indisvalid FROM pg_index WHERE indexrelid = 't_val_idx_ccnew'::regclass")
    result = upkeep(db)
    assert result.status is Status.ok, result.output
    assert lines(result)[1].startswith("dropped invalid leftover index public.t_val_idx_ccnew on public.t (")
    assert [(c.action, c.target) for c in result.changes] == [("drop", "public.t_val_idx_ccnew")]
    assert not index_exists(db, "t_val_idx_ccnew") and index_exists(db, "t_id_ccnew")


def test_a_reindex_blocked_by_a_lock_gives_up_and_the_next_run_finishes(db: str):
    make_bloated_index(db)
    with connect(db) as blocker:
        blocker.execute("BEGIN")
        blocker.execute("INSERT INTO sparse VALUES (-1)")  # a writer REINDEX CONCURRENTLY must wait for
        result = upkeep(db, lock_timeout="300ms")
        assert result.status is Status.warning, result.output
        assert lines(result)[1] == "reindex public.sparse_pkey failed: no lock within lock_timeout 0.3s"
        assert lines(result)[2].startswith("left public.sparse_pkey_ccnew (invalid) for the next run: ")
        assert result.changes[0].detail["succeeded"] is False
        assert index_exists(db, "sparse_pkey_ccnew")
        blocker.execute("COMMIT")
    result = upkeep(db, lock_timeout="300ms")
    assert result.status is Status.ok, result.output
    assert [(c.action, c.target) for c in result.changes] == [
        ("drop", "public.sparse_pkey_ccnew"),
        ("reindex", "public.sparse_pkey"),
    ]
    assert not index_exists(db, "sparse_pkey_ccnew")


def test_thresholds_leave_healthy_and_tiny_tables_alone(db: str):
    execute(
        db,
        "CREATE TABLE healthy (id int PRIMARY KEY, pad text)",
        "INSERT INTO healthy SELECT i, repeat('x', 40) FROM generate_series(1, 50000) i",
        "DELETE FROM healthy WHERE id <= 500",  # 1% dead
        "CREATE TABLE tiny (id int) WITH (autovacuum_enabled = false)",
        "INSERT INTO tiny SELECT generate_series(1, 100)",
        "DELETE FROM tiny",  # all dead, but 8 KiB
    )
    # Each session's statistics before the next one's, or an ANALYZE is overtaken by them.
    wait_for("the deletes", lambda: dead_tuples(db, "tiny") == 100 and dead_tuples(db, "healthy") == 500)
    execute(db, "ANALYZE healthy")
    wait_for("healthy analyzed", lambda: modified(db, "healthy") == 0)
    result = upkeep(db, vacuum_min_dead_tuples=0)
    assert (result.status, lines(result)[1:], result.changes) == (
        Status.ok,
        ["nothing over the thresholds"],
        [],
    )
    assert dead_tuples(db, "tiny") == 100


def test_stale_statistics_are_analyzed(db: str):
    for table in ("old", "never", "changed"):
        execute(
            db,
            f"CREATE TABLE {table} (id int, pad text) WITH (autovacuum_enabled = false)",
            f"INSERT INTO {table} SELECT i, repeat('x', 40) FROM generate_series(1, 20000) i",
        )
    wait_for("the inserts", lambda: all(modified(db, t) == 20000 for t in ("old", "never", "changed")))
    execute(db, "ANALYZE old", "ANALYZE changed")
    wait_for("the analyzes", lambda: modified(db, "old") == modified(db, "changed") == 0)
    execute(db, "UPDATE changed SET pad = 'y' WHERE id <= 1000")  # 5%: under analyze_mod_ratio
    wait_for("changed's modifications", lambda: modified(db, "changed") == 1000)

    fresh = upkeep(db, vacuum=False, min_table_size="64KiB", exclude=["public.nev*"])
    assert lines(fresh)[1:] == ["nothing over the thresholds"]
    later = FakeClock(datetime.now(UTC) + timedelta(days=8, minutes=1))
    result = upkeep(db, clock=later, vacuum=False, analyze_max_age="7d", min_table_size="64KiB")
    assert result.status is Status.ok, result.output
    done = sorted(lines(result)[1:])
    assert done[0].startswith(
        "analyze public.changed: last analyzed 8d ago (max 1w); rows changed since: 1000 -> 0, "
    )
    assert done[1].startswith("analyze public.never: never analyzed; rows changed since: 20000 -> 0, ")
    assert done[2].startswith(
        "analyze public.old: last analyzed 8d ago (max 1w); rows changed since: 0 -> 0, "
    )

    wait_for("the analyzes", lambda: modified(db, "never") == 0)
    execute(db, "UPDATE changed SET pad = 'z' WHERE id <= 5000")
    wait_for("new modifications", lambda: modified(db, "changed") == 5000)
    result = upkeep(db, vacuum=False, min_table_size="64KiB")  # today: only modifications count
    (line,) = lines(result)[1:]
    assert line.startswith(
        "analyze public.changed: 5000 rows changed since the last analyze, 25% of 20000 live"
    )


def test_a_dry_run_measures_and_changes_nothing(db: str):
    make_dead_tuples(db, "churn")
    make_bloated_index(db)
    with pytest.raises(psycopg.errors.UniqueViolation):
        execute(db, "CREATE UNIQUE INDEX CONCURRENTLY churn_pad_ccnew ON churn (pad)")
    sizes = size(db, "sparse_pkey")
    result = upkeep(db, dry_run=True, min_table_size="64KiB")
    assert result.status is Status.ok, result.output
    assert lines(result)[1:] == [
        "dry run: would DROP INDEX CONCURRENTLY public.churn_pad_ccnew (invalid leftover of REINDEX "
        "CONCURRENTLY on public.churn, 0 B)",
        "dry run: would VACUUM (ANALYZE) public.churn (45000 dead tuples, 90.0% of 50000)",
        lines(result)[3],
    ]
    assert lines(result)[3].startswith("dry run: would REINDEX INDEX CONCURRENTLY public.sparse_pkey (bloat ")
    assert [c.action for c in result.changes] == ["drop", "vacuum", "reindex"]
    assert dead_tuples(db, "churn") == 45000 and size(db, "sparse_pkey") == sizes
    assert index_exists(db, "churn_pad_ccnew")


def test_max_operations_leaves_the_rest_for_the_next_run(db: str):
    for table in ("a", "b", "c"):
        make_dead_tuples(db, table, rows=10_000)
    result = upkeep(db, max_operations=1, min_table_size="64KiB", table_bloat_warn_ratio=None)
    assert result.status is Status.ok, result.output
    assert lines(result)[2] == "left for the next run (max_operations 1): vacuum public.b, vacuum public.c"
    assert result.metrics["operations_deferred"] == 2
    assert [dead_tuples(db, t) for t in "abc"] == [0, 9000, 9000]


def test_a_database_that_is_down_is_critical_with_the_exact_message(db: str):
    port = free_port()
    result = upkeep(db, port=port)
    assert result.status is Status.critical
    assert result.output.startswith(
        f"PostgreSQL at {USER}@{HOST}:{port}/{db}: cannot connect: connection failed: "
    )
    assert "Connection refused" in result.output and not result.changes


def test_a_role_that_does_not_own_the_table_is_denied_and_nothing_changes(db: str):
    make_dead_tuples(db, "churn")
    role = f"maintd_plain_{uuid.uuid4().hex[:8]}"
    admin(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(role)))
    try:
        result = upkeep(db, user=role, min_table_size="64KiB")
    finally:
        admin(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))
    assert result.status is Status.critical
    assert lines(result)[1] == (
        'vacuum public.churn failed: permission denied: skipping "churn" --- only table or database '
        "owner can vacuum it"
    )
    assert dead_tuples(db, "churn") == 45000
    assert result.changes[0].detail["succeeded"] is False


def test_identifiers_are_quoted_never_formatted(db: str):
    execute(
        db,
        'CREATE SCHEMA "Odd Schema"',
        'CREATE TABLE "Odd Schema"."drop table x; --" (id int, pad text) WITH (autovacuum_enabled = false)',
        'INSERT INTO "Odd Schema"."drop table x; --" SELECT i, repeat(\'x\', 40)'
        " FROM generate_series(1, 20000) i",
        'DELETE FROM "Odd Schema"."drop table x; --" WHERE id % 2 = 0',
    )
    wait_for("dead tuples", lambda: dead_tuples(db, "drop table x; --") == 10000)
    result = upkeep(db, min_table_size="64KiB", table_bloat_warn_ratio=None)
    assert result.status is Status.ok, result.output
    assert lines(result)[1].startswith("vacuum Odd Schema.drop table x; --: dead tuples 10000 -> 0")
    assert json.dumps([c.as_json() for c in result.changes])
