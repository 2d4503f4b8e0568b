"""The postgres kind against real servers: the machine's PostgreSQL, and a primary with streaming
standbys started here on loopback (tests/postgres_support)."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict
from pydantic import ValidationError

from maintd.checks.base import CheckResult, Status
from maintd.checks.postgres import PostgresConfig
from tests.conftest import PG_ADMIN_URL, run
from tests.kinds import make_target, run_kind
from tests.postgres_support import (
    MONITOR_PASSWORD,
    MONITOR_USER,
    PLAIN_USER,
    Cluster,
    ClusterError,
    Clusters,
    clusters,
    free_port,
    streaming,
    wait_for,
)

_ADMIN = conninfo_to_dict(PG_ADMIN_URL)
SHARED: dict[str, Any] = {
    "host": _ADMIN.get("host", "127.0.0.1"),
    "port": int(_ADMIN.get("port", 5432)),
    "user": _ADMIN.get("user", "postgres"),
    "database": _ADMIN.get("dbname", "postgres"),
}
ONLY_ROLE: dict[str, Any] = {"checks": []}


def check(connection: dict[str, Any], secrets: dict[str, str] | None = None, **params: Any) -> CheckResult:
    target = make_target(kind="database", connection=connection, secrets=secrets or {})
    return run(run_kind("postgres", params, target))


def line_with(result: CheckResult, text: str) -> str:
    lines = [line for line in result.output.splitlines() if text in line]
    assert lines, f"no line with {text!r} in:\n{result.output}"
    return lines[0]


# -- the machine's PostgreSQL -------------------------------------------------------------------


@pytest.fixture(scope="session")
def scratch() -> Iterator[dict[str, Any]]:
    """A database of our own on the machine's server, dropped at the end."""
    name = f"maintd_pgkind_{uuid.uuid4().hex[:10]}"
    try:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
            admin.execute(f'CREATE DATABASE "{name}"')
    except psycopg.Error as exc:
        pytest.fail(f"PostgreSQL is required for these tests and is not usable at {PG_ADMIN_URL}: {exc}")
    yield {**SHARED, "database": name}
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def scratch_conn(scratch: dict[str, Any], **kwargs: Any) -> psycopg.Connection[tuple[Any, ...]]:
    return psycopg.connect(
        host=scratch["host"], port=scratch["port"], user=scratch["user"], dbname=scratch["database"], **kwargs
    )


def test_a_primary_answers_with_its_version_and_role():
    result = check(SHARED, expect_role="primary", **ONLY_ROLE)
    assert result.status is Status.ok, result.output
    first = result.output.splitlines()[0]
    assert first.startswith("PostgreSQL 1") and " primary at " in first
    assert f"{SHARED['host']}:{SHARED['port']}/{SHARED['database']}" in first
    assert result.metrics["is_in_recovery"] == 0
    assert result.metrics["server_version"] >= 100000


def test_the_seeds_daily_check_expecting_a_standby_finds_a_primary_critical():
    result = check(SHARED, expect_role="standby", **ONLY_ROLE)
    assert result.status is Status.critical
    assert "(expected standby)" in result.output.splitlines()[0]
    assert "not in recovery" in line_with(result, "CRITICAL")


def test_the_targets_connection_is_used_and_params_override_it(scratch):
    wrong_port = {**scratch, "port": free_port()}
    result = check(wrong_port, port=scratch["port"], **ONLY_ROLE)
    assert result.status is Status.ok, result.output
    assert result.output.splitlines()[0].endswith(f":{scratch['port']}/{scratch['database']}")


def test_dead_tuples_over_the_threshold_name_the_table(scratch):
    with scratch_conn(scratch) as conn:
        conn.execute("CREATE TABLE bloated (id int) WITH (autovacuum_enabled = off)")
        conn.execute("CREATE TABLE tidy (id int) WITH (autovacuum_enabled = off)")
        conn.execute("INSERT INTO bloated SELECT generate_series(1, 2000)")
        conn.execute("INSERT INTO tidy SELECT generate_series(1, 2000)")
        conn.execute("DELETE FROM bloated WHERE id > 1000")
        # Statistics reach the shared counters when the backend goes idle after this commit.
        conn.execute("SELECT pg_stat_force_next_flush()")
    params = {"checks": ["dead_tuples"], "dead_tuple_min_rows": 1000}

    warned = check(scratch, **params, dead_tuple_warn_ratio=0.3, dead_tuple_crit_ratio=0.6)
    assert warned.status is Status.warning, warned.output
    assert "worst dead tuples 50% in public.bloated (warn 30%, crit 60%)" in warned.output.splitlines()[0]
    assert "public.bloated: 50% dead (1000 of 2000 tuples; warn 30%, crit 60%), never vacuumed" in (
        line_with(warned, "WARNING")
    )
    assert "tidy" not in "\n".join(warned.output.splitlines()[1:])
    assert warned.metrics["worst_dead_tuple_ratio"] == 0.5
    assert warned.metrics["dead_tuple_tables"] == 1

    assert check(scratch, **params, dead_tuple_crit_ratio=0.4).status is Status.critical
    small = check(scratch, checks=["dead_tuples"], dead_tuple_min_rows=5000)
    assert small.status is Status.ok
    assert "no table has 5000 tuples" in small.output


def test_a_long_running_transaction_is_listed_with_pid_user_application_duration_and_query(scratch):
    application = f"holder-{uuid.uuid4().hex[:6]}"

    async def scenario() -> tuple[CheckResult, int]:
        holder = await psycopg.AsyncConnection.connect(
            host=scratch["host"],
            port=scratch["port"],
            user=scratch["user"],
            dbname=scratch["database"],
            application_name=application,
        )
        async with holder:
            await holder.execute("SELECT 1")  # opens the transaction
            sleeping = asyncio.ensure_future(holder.execute("SELECT pg_sleep(30) /* a slow report */"))
            await asyncio.sleep(0.4)
            try:
                target = make_target(kind="database", connection=scratch)
                result = await run_kind(
                    "postgres",
                    {
                        "checks": ["transactions"],
                        "long_transaction_warn": "250ms",
                        "long_transaction_crit": None,
                    },
                    target,
                )
            finally:
                await holder.cancel_safe()
                with contextlib.suppress(psycopg.errors.QueryCanceled):
                    await sleeping
            return result, holder.info.backend_pid

    result, pid = run(scenario())
    assert result.status is Status.warning, result.output
    line = line_with(result, application)
    assert line.startswith(f"WARNING: pid {pid} user {scratch['user']} db {scratch['database']}")
    assert (
        "transaction open " in line
        and "(warn 250ms), active: SELECT pg_sleep(30) /* a slow report */" in line
    )
    assert result.metrics["longest_transaction_seconds"] >= 0.4
    assert result.metrics["long_transactions"] >= 1


def test_a_session_idle_in_transaction_is_listed_without_its_query_when_asked(scratch):
    application = f"idler-{uuid.uuid4().hex[:6]}"
    with scratch_conn(scratch, application_name=application) as idler:
        idler.execute("SELECT 'secret-ish text'")  # the transaction stays open, idle
        time.sleep(0.4)
        params: dict[str, Any] = {
            "checks": ["transactions"],
            "long_transaction_warn": None,
            "long_transaction_crit": None,
            "idle_in_transaction_warn": "250ms",
            "idle_in_transaction_crit": None,
        }
        shown = check(scratch, **params)
        hidden = check(scratch, **params, show_query=False)
        idler.rollback()
    assert shown.status is Status.warning, shown.output
    line = line_with(shown, application)
    assert ", idle in transaction " in line and "(warn 250ms): SELECT 'secret-ish text'" in line
    assert shown.metrics["longest_idle_in_transaction_seconds"] >= 0.4
    assert "secret-ish" not in line_with(hidden, application)


def test_connections_over_a_low_threshold_are_a_warning():
    with contextlib.ExitStack() as stack:
        for _ in range(3):
            stack.enter_context(psycopg.connect(PG_ADMIN_URL))
        result = check(
            SHARED, checks=["connections"], connections_warn_percent=1, connections_crit_percent=None
        )
    assert result.status is Status.warning, result.output
    assert result.metrics["connections"] >= 4
    percent = 100 * result.metrics["connections"] / result.metrics["max_connections"]
    assert result.metrics["connection_percent"] == round(percent, 2)
    assert "of max_connections" in line_with(result, "WARNING")


def test_an_unreachable_port_is_critical_with_the_reason():
    result = check({**SHARED, "port": free_port()}, **ONLY_ROLE)
    assert result.status is Status.critical
    assert "cannot connect" in result.output and "Connection refused" in result.output
    assert len(result.output.splitlines()) == 1


def test_a_target_without_a_host_is_unknown():
    result = check({"database": "postgres"})
    assert result.status is Status.unknown
    assert "no host" in result.output


# -- a primary and streaming standbys started here ----------------------------------------------


@dataclass
class Replicated:
    clusters: Clusters
    primary: Cluster
    standby: Cluster


@pytest.fixture(scope="session")
def pg() -> Iterator[Replicated]:
    with clusters() as made:
        try:
            primary = made.primary()
            primary.sql("CREATE TABLE seen (id int)")
            standby = made.standby(primary, "standby1")
            primary.sql("INSERT INTO seen VALUES (1)")
            wait_for("the standby to replay", lambda: standby.sql("SELECT count(*) FROM seen") == [(1,)])
        except (ClusterError, psycopg.Error) as exc:
            pytest.fail(f"could not start a PostgreSQL primary with a streaming standby: {exc}")
        yield Replicated(made, primary, standby)


_spares = itertools.count(1)


@pytest.fixture
def spare(pg: Replicated) -> Iterator[Cluster]:
    """One more standby of pg.primary, for a test that stops or promotes it."""
    name = f"spare{next(_spares)}"
    try:
        standby = pg.clusters.standby(pg.primary, name)
    except (ClusterError, psycopg.Error) as exc:
        pytest.fail(f"could not start a second standby: {exc}")
    yield standby
    if standby.running():
        standby.stop()
    wait_for(f"slot {name} to be released", lambda: not streaming(pg.primary, name))
    wait_for(
        f"slot {name} to be inactive",
        lambda: (
            pg.primary.sql("SELECT active FROM pg_replication_slots WHERE slot_name = %s", name) == [(False,)]
        ),
    )
    pg.primary.sql("SELECT pg_drop_replication_slot(%s)", name)


def caught_up(standby: Cluster) -> bool:
    rows = standby.sql("SELECT pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn()")
    return bool(rows[0][0])


def test_a_healthy_primary_reports_its_streaming_standby_and_lag(pg):
    result = check(pg.primary.connection, expect_role="primary", min_standbys=1)
    assert result.status is Status.ok, result.output
    first = result.output.splitlines()[0]
    assert first.startswith("PostgreSQL 15") and " primary at " in first
    assert "1 standby(s) streaming (min 1)" in first
    assert "replay lag " in first and "(warn 16.0 MiB, crit 256.0 MiB)" in first
    assert "standby standby1 from 127.0.0.1: streaming, async, replay lag " in result.output
    assert result.metrics["standbys"] == 1
    assert result.metrics["replication_lag_bytes"] >= 0
    assert result.metrics["replication_slots"] == 1 and result.metrics["inactive_slots"] == 0
    assert result.metrics["max_connections"] == 20


def test_a_standby_reports_recovery_with_its_receive_and_replay_positions(pg):
    wait_for("the standby to catch up", lambda: caught_up(pg.standby))
    result = check(pg.standby.connection, expect_role="standby")
    assert result.status is Status.ok, result.output
    first = result.output.splitlines()[0]
    assert " standby at " in first and "WAL receiver streaming" in first
    assert result.metrics["is_in_recovery"] == 1
    assert result.metrics["wal_receiver_streaming"] == 1
    assert "received WAL up to 0/" in result.output and ", replayed up to 0/" in result.output
    if result.metrics["replication_lag_bytes"] == 0:  # a WAL record may arrive between the two
        # The last replayed transaction ages while the primary is idle; that is not lag.
        assert "replay caught up with receive" in first and "(an idle primary, not lag)" in first
        assert result.metrics["replication_lag_seconds"] == 0
        assert result.metrics["last_replay_age_seconds"] >= 0


@pytest.mark.parametrize(
    ("which", "expect", "reason"),
    [
        ("primary", "standby", "expected a standby, but the server is not in recovery"),
        ("standby", "primary", "expected a primary, but the server is in recovery"),
    ],
)
def test_expecting_the_other_role_is_critical(pg, which, expect, reason):
    result = check(getattr(pg, which).connection, expect_role=expect, **ONLY_ROLE)
    assert result.status is Status.critical
    assert "PostgreSQL 15" in result.output and f"{which} (expected {expect})" in result.output
    assert reason in line_with(result, "CRITICAL")


def test_paused_replay_is_lag_on_both_sides(pg):
    pg.standby.sql("SELECT pg_wal_replay_pause()")
    try:
        pg.primary.sql("INSERT INTO seen VALUES (2)")
        wait_for("WAL waiting to be replayed", lambda: not caught_up(pg.standby))
        tight = {"checks": ["replication"], "lag_warn_bytes": 1}
        on_primary = check(pg.primary.connection, **tight)
        on_standby = check(pg.standby.connection, **tight)
    finally:
        pg.standby.sql("SELECT pg_wal_replay_resume()")
    wait_for("the standby to catch up", lambda: caught_up(pg.standby))

    assert on_primary.status is Status.warning, on_primary.output
    assert "(warn 1 B, crit 256.0 MiB)" in line_with(
        on_primary, "WARNING: standby standby1 from 127.0.0.1 replay is"
    )
    assert on_primary.metrics["replication_lag_bytes"] > 0

    assert on_standby.status is Status.warning, on_standby.output
    assert on_standby.metrics["replication_lag_bytes"] > 0
    assert on_standby.metrics["replay_paused"] == 1
    # Received WAL waits, so the age of the last replayed transaction is lag now.
    assert on_standby.metrics["replication_lag_seconds"] == on_standby.metrics["last_replay_age_seconds"]
    assert line_with(on_standby, "WAL replay is paused").startswith("WARNING: ")
    assert "B behind (warn 1 B, crit 256.0 MiB)" in line_with(
        on_standby, "WARNING: this standby's replay is "
    )


def test_connections_near_max_connections_warn_then_go_critical(pg):
    thresholds: dict[str, Any] = {
        "checks": ["connections"],
        "connections_warn_percent": 25,
        "connections_crit_percent": 50,
    }
    with contextlib.ExitStack() as stack:
        for _ in range(5):
            stack.enter_context(pg.primary.connect())
        warned = check(pg.primary.connection, **thresholds)  # 5 + the check's own of 20
        for _ in range(5):
            stack.enter_context(pg.primary.connect())
        critical = check(pg.primary.connection, **thresholds)
    assert warned.status is Status.warning, warned.output
    assert 6 <= warned.metrics["connections"] < 10
    assert f"{warned.metrics['connections']:.0f}/20 connections = " in warned.output.splitlines()[0]
    assert "(warn 25%, crit 50%)" in warned.output.splitlines()[0]
    assert critical.status is Status.critical, critical.output
    assert critical.metrics["connection_percent"] >= 55


def test_an_inactive_replication_slot_is_a_warning_by_default(pg):
    pg.primary.sql("SELECT pg_create_physical_replication_slot('forgotten', true)")
    try:
        result = check(pg.primary.connection, checks=["replication"])
        strict = check(pg.primary.connection, checks=["replication"], inactive_slot_status="critical")
    finally:
        pg.primary.sql("SELECT pg_drop_replication_slot('forgotten')")
    assert result.status is Status.warning, result.output
    assert "replication slot forgotten (physical) is inactive, holding back " in line_with(result, "WARNING")
    assert result.metrics["inactive_slots"] == 1
    assert strict.status is Status.critical


def test_stopping_a_standby_makes_min_standbys_critical(pg, spare):
    both = check(pg.primary.connection, checks=["replication"], min_standbys=2)
    assert both.status is Status.ok, both.output
    assert both.metrics["standbys"] == 2

    spare.stop()
    wait_for("the primary to notice", lambda: not streaming(pg.primary, spare.name))
    one = check(pg.primary.connection, checks=["replication"], min_standbys=2)
    assert one.status is Status.critical
    assert "1 standby(s) streaming (min 2)" in one.output.splitlines()[0]
    assert "1 standby(s) streaming, fewer than min_standbys 2" in line_with(one, "CRITICAL")
    assert f"replication slot {spare.name} (physical) is inactive" in line_with(one, "WARNING")


def test_a_promoted_standby_is_critical_for_the_seeds_check(pg, spare):
    assert check(spare.connection, expect_role="standby", **ONLY_ROLE).status is Status.ok
    spare.promote()
    promoted = check(spare.connection, expect_role="standby", **ONLY_ROLE)
    assert promoted.status is Status.critical
    assert "promoted" in line_with(promoted, "CRITICAL")
    now_primary = check(spare.connection, expect_role="primary", checks=["replication"])
    assert now_primary.status is Status.ok, now_primary.output
    assert now_primary.metrics["is_in_recovery"] == 0


def test_a_monitoring_role_logs_in_with_the_password_from_the_targets_secret(pg, monkeypatch):
    monkeypatch.setenv("MAINTD_TEST_PG_PASSWORD", MONITOR_PASSWORD)
    connection = {**pg.primary.connection, "user": MONITOR_USER}
    result = check(connection, {"password": "env:MAINTD_TEST_PG_PASSWORD"}, min_standbys=1)
    assert result.status is Status.ok, result.output
    assert result.output.startswith("PostgreSQL 15")
    assert "standby standby1 from 127.0.0.1: streaming, async" in result.output  # pg_monitor sees it
    assert MONITOR_PASSWORD not in result.output


def test_a_wrong_password_is_critical_with_the_reason(pg, monkeypatch):
    monkeypatch.setenv("MAINTD_TEST_PG_PASSWORD", "not the password")
    connection = {**pg.primary.connection, "user": MONITOR_USER}
    result = check(connection, {"dbpass": "env:MAINTD_TEST_PG_PASSWORD"}, password_secret="dbpass")
    assert result.status is Status.critical
    assert f'password authentication failed for user "{MONITOR_USER}"' in result.output
    assert "not the password" not in result.output


def test_without_the_secret_no_password_is_sent(pg):
    result = check({**pg.primary.connection, "user": MONITOR_USER})
    assert result.status is Status.critical
    assert "no password supplied" in result.output


def test_a_secret_that_cannot_be_read_is_unknown(pg, monkeypatch):
    monkeypatch.delenv("MAINTD_TEST_PG_PASSWORD", raising=False)
    result = check(pg.primary.connection, {"password": "env:MAINTD_TEST_PG_PASSWORD"})
    assert result.status is Status.unknown
    assert "MAINTD_TEST_PG_PASSWORD, which is not set" in result.output


def test_a_role_without_pg_monitor_gets_unknown_not_a_false_alarm(pg):
    primary = check({**pg.primary.connection, "user": PLAIN_USER}, checks=["replication"], min_standbys=1)
    assert primary.status is Status.unknown, primary.output
    hidden = "1 walsender(s) not visible (log in as a role with pg_monitor)"
    assert hidden in line_with(primary, "UNKNOWN: 0 standby(s) streaming")
    assert "standby standby1 from an address not visible: state not visible" in primary.output

    standby = check({**pg.standby.connection, "user": PLAIN_USER}, checks=["replication"])
    assert standby.status is Status.unknown, standby.output
    assert "the WAL receiver's status is not visible" in line_with(standby, "UNKNOWN")


# -- params -------------------------------------------------------------------------------------


def test_unknown_params_are_errors():
    with pytest.raises(ValidationError, match="min_standby"):
        PostgresConfig.model_validate({"min_standby": 1})


def test_a_warning_threshold_above_the_critical_one_is_an_error():
    with pytest.raises(ValidationError, match=r"long_transaction_warn \(2h\) is above long_transaction_crit"):
        PostgresConfig.model_validate({"long_transaction_warn": "2h"})


def test_byte_thresholds_take_units():
    config = PostgresConfig.model_validate({"lag_warn_bytes": "1MiB", "lag_crit_bytes": "1GiB"})
    assert (config.lag_warn_bytes, config.lag_crit_bytes) == (2**20, 2**30)
