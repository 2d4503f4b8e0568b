"""One function per check: run its read-only queries and add facts, problems and metrics to the Report.

Every query works on PostgreSQL 10 or newer. A role without ``pg_monitor`` sees
other users' sessions and the replication columns as NULL; the probes treat
NULL as "not visible", never as a number.
"""

from __future__ import annotations

from typing import Any

from psycopg import AsyncConnection
from psycopg.rows import DictRow

from maintd.checks.base import Status
from maintd.checks.postgres.config import PostgresConfig
from maintd.checks.postgres.report import (
    Report,
    fmt_bytes,
    fmt_percent,
    fmt_ratio,
    fmt_seconds,
    level,
    limits,
    seconds,
)

Conn = AsyncConnection[DictRow]

_GRANT = "log in as a role with pg_monitor"

# pg_basebackup's walsenders (state 'backup') are not standbys.
_STANDBYS = """
SELECT application_name, host(client_addr) AS client, state, sync_state,
       greatest(pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn), 0)::float8 AS lag_bytes,
       extract(epoch FROM replay_lag)::float8 AS lag_seconds
FROM pg_stat_replication
WHERE state IS DISTINCT FROM 'backup'
ORDER BY application_name, pid
"""

_SLOTS = """
SELECT slot_name, slot_type, active,
       pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn)::float8 AS retained_bytes
FROM pg_replication_slots
ORDER BY slot_name
"""

_WAL_RECEIVER = "SELECT status FROM pg_stat_wal_receiver"

_REPLAY = """
SELECT pg_last_wal_receive_lsn()::text AS receive_lsn,
       pg_last_wal_replay_lsn()::text AS replay_lsn,
       pg_wal_lsn_diff(pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn())::float8 AS lag_bytes,
       extract(epoch FROM now() - pg_last_xact_replay_timestamp())::float8 AS replay_age,
       pg_is_wal_replay_paused() AS paused
"""

_CONNECTIONS = """
SELECT count(*) FILTER (WHERE backend_type = 'client backend') AS connections,
       current_setting('max_connections')::int AS max_connections
FROM pg_stat_activity
"""

# xact_start is NULL for other users' sessions unless this role has pg_read_all_stats.
_TRANSACTIONS = """
SELECT pid, usename, datname, application_name, state,
       greatest(extract(epoch FROM now() - xact_start), 0)::float8 AS xact_seconds,
       CASE WHEN state IN ('idle in transaction', 'idle in transaction (aborted)')
            THEN greatest(extract(epoch FROM now() - state_change), 0)::float8 END AS idle_seconds,
       left(query, 400) AS query
FROM pg_stat_activity
WHERE backend_type = 'client backend' AND xact_start IS NOT NULL AND pid <> pg_backend_pid()
ORDER BY xact_start
"""

_DEAD_TUPLES = """
SELECT schemaname, relname, n_live_tup, n_dead_tup,
       n_dead_tup::float8 / (n_live_tup + n_dead_tup) AS ratio,
       extract(epoch FROM now() - greatest(last_vacuum, last_autovacuum))::float8 AS vacuum_age
FROM pg_stat_user_tables
WHERE n_live_tup + n_dead_tup >= %(min_rows)s
ORDER BY ratio DESC, n_dead_tup DESC
LIMIT %(top)s
"""


async def fetch(conn: Conn, query: str, params: dict[str, Any] | None = None) -> list[DictRow]:
    cursor = await conn.execute(query, params)
    return await cursor.fetchall()


def _byte_limits(cfg: PostgresConfig) -> str:
    return limits(fmt_bytes(cfg.lag_warn_bytes), fmt_bytes(cfg.lag_crit_bytes))


def _time_limits(cfg: PostgresConfig) -> str:
    return limits(fmt_seconds(seconds(cfg.lag_warn_time)), fmt_seconds(seconds(cfg.lag_crit_time)))


def _lag_facts(cfg: PostgresConfig, lag_bytes: float, lag_seconds: float | None) -> str:
    in_time = fmt_seconds(lag_seconds) or "unknown"
    return f"replay lag {fmt_bytes(lag_bytes)} ({_byte_limits(cfg)}) and {in_time} ({_time_limits(cfg)})"


def _judge_lag(report: Report, cfg: PostgresConfig, who: str, lag_bytes: float, lag_s: float | None) -> None:
    by_bytes = level(lag_bytes, cfg.lag_warn_bytes, cfg.lag_crit_bytes)
    report.problem(by_bytes, f"{who} replay is {fmt_bytes(lag_bytes)} behind ({_byte_limits(cfg)})")
    by_time = level(lag_s, seconds(cfg.lag_warn_time), seconds(cfg.lag_crit_time))
    report.problem(by_time, f"{who} replay is {fmt_seconds(lag_s)} behind ({_time_limits(cfg)})")


async def primary_replication(conn: Conn, cfg: PostgresConfig, report: Report) -> None:
    standbys = await fetch(conn, _STANDBYS)
    streaming = [row for row in standbys if row["state"] == "streaming"]
    report.metrics["standbys"] = float(len(streaming))
    report.facts.append(f"{len(streaming)} standby(s) streaming (min {cfg.min_standbys})")
    hidden = [row for row in standbys if row["state"] is None]
    if len(streaming) < cfg.min_standbys:
        summary = f"{len(streaming)} standby(s) streaming, fewer than min_standbys {cfg.min_standbys}"
        if hidden:
            # Without pg_read_all_stats a walsender's state is NULL: it may well be streaming.
            report.problem(Status.unknown, f"{summary}; {len(hidden)} walsender(s) not visible ({_GRANT})")
        else:
            others = len(standbys) - len(streaming)
            report.problem(Status.critical, summary + (f"; {others} other walsender(s)" if others else ""))
    max_bytes, max_seconds = 0.0, 0.0
    for row in standbys:
        name = row["application_name"] or "(no application_name)"
        client = row["client"] or ("an address not visible" if row["state"] is None else "the local socket")
        who = f"standby {name} from {client}"
        lag_bytes, lag_s = row["lag_bytes"], row["lag_seconds"]
        state = row["state"] or f"state not visible ({_GRANT})"
        report.details.append(
            f"{who}: {state}, {row['sync_state'] or 'sync state not visible'}, replay lag "
            f"{fmt_bytes(lag_bytes) or 'unknown'}, {fmt_seconds(lag_s) or 'no recent replay_lag'}"
        )
        if row["state"] is not None and row["state"] != "streaming":
            report.problem(Status.warning, f"{who} is {row['state']}, not streaming")
        if lag_bytes is not None:
            max_bytes = max(max_bytes, lag_bytes)
            # replay_lag is NULL once an idle standby has caught up: no lag in time.
            _judge_lag(report, cfg, who, lag_bytes, lag_s or 0.0)
        max_seconds = max(max_seconds, lag_s or 0.0)
    report.metrics["replication_lag_bytes"] = max_bytes
    report.metrics["replication_lag_seconds"] = max_seconds
    if standbys:
        report.facts.append(_lag_facts(cfg, max_bytes, max_seconds))
    await _slots(conn, cfg, report)


async def _slots(conn: Conn, cfg: PostgresConfig, report: Report) -> None:
    slots = await fetch(conn, _SLOTS)
    inactive = [row for row in slots if not row["active"]]
    report.metrics["replication_slots"] = float(len(slots))
    report.metrics["inactive_slots"] = float(len(inactive))
    report.metrics["slot_retained_bytes"] = max((row["retained_bytes"] or 0.0 for row in slots), default=0.0)
    if inactive:
        report.facts.append(f"{len(inactive)} of {len(slots)} replication slot(s) inactive")
    for row in inactive:
        held = fmt_bytes(row["retained_bytes"])
        report.problem(
            Status(cfg.inactive_slot_status),
            f"replication slot {row['slot_name']} ({row['slot_type']}) is inactive"
            + (f", holding back {held} of WAL" if held else ""),
        )


async def standby_replication(conn: Conn, cfg: PostgresConfig, report: Report) -> None:
    receivers = await fetch(conn, _WAL_RECEIVER)
    status = receivers[0]["status"] if receivers else None
    streaming = status == "streaming"
    report.metrics["wal_receiver_streaming"] = 1.0 if streaming else 0.0
    if streaming:
        report.facts.append("WAL receiver streaming")
    elif receivers and status is None:
        report.facts.append("WAL receiver status not visible")
        report.problem(Status.unknown, f"the WAL receiver's status is not visible ({_GRANT})")
    else:
        what = f"WAL receiver is {status}" if status else "no WAL receiver is running"
        report.facts.append(what)
        report.problem(
            Status.critical if cfg.require_streaming else Status.ok, f"{what}: not streaming from a primary"
        )
    (row,) = await fetch(conn, _REPLAY)
    lag_bytes = max(row["lag_bytes"] or 0.0, 0.0)
    age = row["replay_age"]
    if age is not None:
        report.metrics["last_replay_age_seconds"] = max(age, 0.0)
    report.metrics["replay_paused"] = 1.0 if row["paused"] else 0.0
    # pg_last_xact_replay_timestamp() keeps ageing while the primary is idle: it is lag
    # only while received WAL waits to be replayed.
    lag_seconds = max(age or 0.0, 0.0) if lag_bytes > 0 else 0.0
    report.metrics["replication_lag_bytes"] = lag_bytes
    report.metrics["replication_lag_seconds"] = lag_seconds
    if lag_bytes > 0:
        report.facts.append(_lag_facts(cfg, lag_bytes, lag_seconds if age is not None else None))
        _judge_lag(report, cfg, "this standby's", lag_bytes, lag_seconds if age is not None else None)
    else:
        why = "an idle primary, not lag" if streaming else "not lag"
        last = (
            f", last replayed transaction {fmt_seconds(max(age, 0.0))} ago ({why})" if age is not None else ""
        )
        report.facts.append(f"replay caught up with receive: replay lag 0 B and 0s{last}")
    received, replayed = row["receive_lsn"] or "nothing yet", row["replay_lsn"] or "nothing"
    report.details.append(f"received WAL up to {received}, replayed up to {replayed}")
    if row["paused"]:
        report.problem(Status.warning, "WAL replay is paused (SELECT pg_wal_replay_resume() resumes it)")


async def connections(conn: Conn, cfg: PostgresConfig, report: Report) -> None:
    (row,) = await fetch(conn, _CONNECTIONS)
    used, most = int(row["connections"]), int(row["max_connections"])
    percent = 100.0 * used / most if most else 0.0
    report.metrics["connections"] = float(used)
    report.metrics["max_connections"] = float(most)
    report.metrics["connection_percent"] = round(percent, 2)
    bounds = limits(fmt_percent(cfg.connections_warn_percent), fmt_percent(cfg.connections_crit_percent))
    report.facts.append(f"{used}/{most} connections = {percent:.0f}% ({bounds})")
    report.problem(
        level(percent, cfg.connections_warn_percent, cfg.connections_crit_percent),
        f"{used} client connections are {percent:.0f}% of max_connections {most} ({bounds})",
    )


async def transactions(conn: Conn, cfg: PostgresConfig, report: Report) -> None:
    sessions = await fetch(conn, _TRANSACTIONS)
    tx_warn, tx_crit = seconds(cfg.long_transaction_warn), seconds(cfg.long_transaction_crit)
    idle_warn, idle_crit = seconds(cfg.idle_in_transaction_warn), seconds(cfg.idle_in_transaction_crit)
    tx_limits = limits(fmt_seconds(tx_warn), fmt_seconds(tx_crit))
    idle_limits = limits(fmt_seconds(idle_warn), fmt_seconds(idle_crit))
    longest = max((row["xact_seconds"] for row in sessions), default=0.0)
    idle = [row["idle_seconds"] for row in sessions if row["idle_seconds"] is not None]
    report.metrics["longest_transaction_seconds"] = round(longest, 3)
    report.metrics["longest_idle_in_transaction_seconds"] = round(max(idle, default=0.0), 3)
    if sessions:
        report.facts.append(f"longest transaction {fmt_seconds(longest)} ({tx_limits})")
    else:
        report.facts.append(f"no open transaction ({tx_limits})")
    if idle:
        report.facts.append(f"longest idle in transaction {fmt_seconds(max(idle))} ({idle_limits})")
    flagged: list[tuple[Status, str]] = []
    for row in sessions:
        status = max(
            level(row["xact_seconds"], tx_warn, tx_crit),
            level(row["idle_seconds"], idle_warn, idle_crit),
            key=lambda s: s.rank,
        )
        if status is Status.ok:
            continue
        text = (
            f"pid {row['pid']} user {row['usename']} db {row['datname']} "
            f"application {row['application_name'] or '-'!r}: "
            f"transaction open {fmt_seconds(row['xact_seconds'])} ({tx_limits})"
        )
        if row["idle_seconds"] is not None:
            text += f", idle in transaction {fmt_seconds(row['idle_seconds'])} ({idle_limits})"
        else:
            text += f", {row['state'] or 'state not visible'}"
        if cfg.show_query:
            text += f": {' '.join((row['query'] or '').split())[:100]}"
        flagged.append((status, text))
    report.metrics["long_transactions"] = float(len(flagged))
    for status, text in flagged[: cfg.list_limit]:
        report.problem(status, text)
    rest = flagged[cfg.list_limit :]
    if rest:
        worst = max((s for s, _ in rest), key=lambda s: s.rank)
        report.problem(worst, f"{len(rest)} more long or idle transaction(s) not listed (list_limit)")


async def dead_tuples(conn: Conn, cfg: PostgresConfig, report: Report) -> None:
    tables = await fetch(conn, _DEAD_TUPLES, {"min_rows": cfg.dead_tuple_min_rows, "top": cfg.dead_tuple_top})
    bounds = limits(fmt_ratio(cfg.dead_tuple_warn_ratio), fmt_ratio(cfg.dead_tuple_crit_ratio))
    worst = tables[0]["ratio"] if tables else 0.0
    report.metrics["worst_dead_tuple_ratio"] = round(worst, 4)
    if tables:
        name = f"{tables[0]['schemaname']}.{tables[0]['relname']}"
        report.facts.append(f"worst dead tuples {fmt_ratio(worst)} in {name} ({bounds})")
    else:
        report.facts.append(f"no table has {cfg.dead_tuple_min_rows} tuples to judge dead tuples by")
    flagged = 0
    for row in tables:
        status = level(row["ratio"], cfg.dead_tuple_warn_ratio, cfg.dead_tuple_crit_ratio)
        if status is Status.ok:
            continue
        flagged += 1
        total = row["n_live_tup"] + row["n_dead_tup"]
        age = row["vacuum_age"]
        vacuumed = f"last vacuumed {fmt_seconds(max(age, 0.0))} ago" if age is not None else "never vacuumed"
        report.problem(
            status,
            f"table {row['schemaname']}.{row['relname']}: {fmt_ratio(row['ratio'])} dead "
            f"({row['n_dead_tup']} of {total} tuples; {bounds}), {vacuumed}",
        )
    report.metrics["dead_tuple_tables"] = float(flagged)
