"""The drain of ``maintd intake``'s journal, on both stores: rows written as the intake writes them
(the raw driver) become alerts and incidents through the synchronous routes' path, oldest first,
each exactly once; a row that cannot be stored is kept with its error and blocks nothing."""

from __future__ import annotations

import asyncio
import json
import sys
import threading
import urllib.request
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from maintd.api.deps import AppContext
from maintd.api.ingest import View, _ingest
from maintd.clock import FakeClock
from maintd.engine import Engine
from maintd.incidents.committer import AlertRequest
from maintd.intake.backlog import BacklogCollector
from maintd.intake.drain import Drain, Drained, Pace
from maintd.metrics import Metrics
from maintd.plan.incidents import Priority
from maintd.store.db import Store
from maintd.store.models import AlertIntakeRow, AlertRow, EventRow
from tests.conftest import T0
from tests.harness import Harness, http_get
from tests.ingest_support import PLAN, alerts, incidents
from tests.notify_support import Webhook

WRITER = Path(__file__).parent / "process_support" / "journal_writer.py"

# -- the journal as maintd intake writes it ------------------------------------------------------


def native(target: str, status: str = "firing", **row: Any) -> dict[str, Any]:
    body = [{"labels": {"alertname": "DiskFull", "target": target}, "severity": "critical", "status": status}]
    return {"source": "native", "actor": "token:rob", "body": json.dumps(body).encode(), **row}


def alertmanager_row(*targets: str) -> dict[str, Any]:
    body = {
        "version": "4",
        "groupKey": '{}:{alertname="NodeDown"}',
        "status": "firing",
        "receiver": "maintd",
        "alerts": [
            {
                "status": "firing",
                "labels": {"alertname": "NodeDown", "target": t, "severity": "warning"},
                "annotations": {"summary": f"{t} is down"},
                "startsAt": "2026-11-27T00:58:00Z",
                "fingerprint": "",
            }
            for t in targets
        ],
    }
    return {
        "source": "alertmanager",
        "actor": "integration:prom",
        "integration": "prom",
        "body": json.dumps(body).encode(),
    }


def pagerduty_row(dedup_key: str, action: str = "trigger") -> dict[str, Any]:
    body: dict[str, Any] = {"routing_key": "k" * 32, "event_action": action}
    if action == "trigger":
        body["payload"] = {"summary": "disk full", "source": "db9", "severity": "error"}
    else:
        body["dedup_key"] = dedup_key
    return {
        "source": "pagerduty",
        "actor": "integration:pd",
        "integration": "pd",
        "dedup_key": dedup_key,
        "body": json.dumps(body).encode(),
    }


def journal(store: Store, *rows: dict[str, Any]) -> list[int]:
    """Insert with the database's own driver, as the intake does (SQLite: naive UTC text times)."""
    conn = store.engine.raw_connection()
    ids = []
    try:
        cursor = conn.cursor()
        for row in rows:
            received: datetime = row.get("received_at", T0)
            values = [row["source"], row["actor"], row.get("integration"), row.get("dedup_key"), row["body"]]
            if store.dialect == "sqlite":
                text_time = received.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
                cursor.execute(
                    "INSERT INTO alert_intake (received_at, source, actor, integration, dedup_key, body)"
                    " VALUES (?, ?, ?, ?, ?, ?)",
                    [text_time, *values],
                )
                ids.append(cursor.lastrowid)
            else:
                cursor.execute(
                    "INSERT INTO alert_intake (received_at, source, actor, integration, dedup_key, body)"
                    " VALUES (%s, %s, %s, %s, %s, %s) RETURNING id",
                    [received, *values],
                )
                ids.append(cursor.fetchone()[0])
        conn.commit()
    finally:
        conn.close()
    return ids


def left(store: Store) -> list[AlertIntakeRow]:
    with store.read() as s:
        return list(s.scalars(select(AlertIntakeRow).order_by(AlertIntakeRow.id)))


def sample(metrics: Metrics, name: str, **labels: str) -> float | None:
    return metrics.registry.get_sample_value(name, labels)


# -- fixtures ------------------------------------------------------------------------------------


@pytest.fixture
def engine(store, write_plan, make_engine) -> Engine:  # type: ignore[no-untyped-def]
    engine = make_engine(store, write_plan(PLAN))
    assert engine.reload().ok
    return engine


@pytest.fixture
def ctx(engine: Engine) -> AppContext:
    engine.metrics.registry.register(BacklogCollector(engine.store, engine.clock))  # as maintd serve does
    return AppContext(engine.store, engine.clock, engine.metrics, engine)


def drain_all(drain: Drain) -> Drained:
    """``drain_once`` until the journal has nothing left waiting; what it did, added up."""
    total = Drained()
    while (done := drain.drain_once()).progressed:
        drain.after(done)
        total.add(done)
    return total


# -- the path --------------------------------------------------------------------------------------


def test_rows_of_every_source_become_alerts_and_incidents_and_leave_the_journal(ctx: AppContext):
    journal(ctx.store, native("db1"), alertmanager_row("web1", "web2"), pagerduty_row("srv01/mysql"))
    done = Drain(ctx).drain_once()
    assert (done.rows, done.failed) == (3, {})
    assert left(ctx.store) == []
    rows = alerts(ctx.store)
    assert [(r.source, r.integration, r.labels.get("target")) for r in rows] == [
        ("native", None, "db1"),
        ("alertmanager", "prom", "web1"),
        ("alertmanager", "prom", "web2"),
        ("pagerduty", "pd", "db9"),
    ]
    assert rows[3].dedup_key == "pd:srv01/mysql"  # the key the intake answered, in its integration
    assert len(incidents(ctx.store)) == 4  # the plan groups by alertname and target
    with ctx.store.read() as s:
        actors = set(s.scalars(select(EventRow.actor).where(EventRow.kind == "alert.received")))
    assert actors <= {"token:rob", "integration:prom", "integration:pd"}


def test_a_backlog_is_stamped_with_when_the_intake_took_it_not_when_it_is_drained(ctx: AppContext):
    assert isinstance(ctx.clock, FakeClock) and ctx.engine is not None and ctx.engine.loaded is not None
    drained_at = ctx.clock.advance(timedelta(minutes=20))  # maintd serve was down meanwhile
    ahead = drained_at + timedelta(minutes=5)  # an intake on a host whose clock runs ahead
    journal(ctx.store, native("db1", received_at=T0), native("db2", received_at=ahead))
    drain_all(Drain(ctx))
    assert [(r.starts_at, r.last_received_at) for r in alerts(ctx.store)] == [
        (T0, T0),
        (drained_at, drained_at),  # never later than the drain's own clock
    ]
    late, on_time = incidents(ctx.store)
    deadline = ctx.engine.loaded.plan.incidents.deadlines[Priority(late.priority)]
    assert (late.opened_at, late.ack_deadline) == (T0, T0 + deadline)  # counted from the alert's arrival
    assert (on_time.opened_at, on_time.ack_deadline) == (drained_at, drained_at + deadline)


def test_the_metrics_count_each_alert_as_the_synchronous_routes_do(ctx: AppContext):
    journal(ctx.store, native("db1"), native("db1"), pagerduty_row("k1"))
    drain = Drain(ctx)
    drain.after(drain.drain_once())
    assert sample(ctx.metrics, "maintd_alerts_received_total", source="native", outcome="created") == 1
    assert sample(ctx.metrics, "maintd_alerts_received_total", source="native", outcome="updated") == 1
    assert sample(ctx.metrics, "maintd_alerts_received_total", source="pagerduty", outcome="created") == 1
    assert sample(ctx.metrics, "maintd_intake_drained_total") == 3


def test_rows_are_taken_in_order_of_arrival_so_a_resolve_follows_its_firing(ctx: AppContext):
    journal(ctx.store, native("db1"), pagerduty_row("k1"))
    journal(ctx.store, native("db1", status="resolved"), pagerduty_row("k1", action="resolve"))
    done = Drain(ctx).drain_once()
    assert [outcome for _source, outcome in done.outcomes] == ["created", "created", "resolved", "resolved"]
    assert {i.state for i in incidents(ctx.store)} == {"resolved"}


def test_a_batch_stops_at_max_alerts_and_the_rest_follow_in_the_next(ctx: AppContext):
    journal(ctx.store, *[native(f"db{i}") for i in range(5)], alertmanager_row("w1", "w2", "w3", "w4"))
    drain = Drain(ctx, max_alerts=3)
    assert drain.drain_once().rows == 3
    assert drain.drain_once().rows == 2
    assert drain.drain_once().rows == 1  # over the limit alone: it goes in a batch of its own
    assert left(ctx.store) == [] and len(alerts(ctx.store)) == 9
    assert not drain.drain_once().progressed


def test_a_long_journal_is_read_page_by_page_into_batches_of_max_alerts(ctx: AppContext):
    journal(ctx.store, *[native(f"db{i}") for i in range(130)])
    drain = Drain(ctx, max_alerts=100)
    assert drain.drain_once().rows == 100
    assert drain.drain_once().rows == 30
    assert len(alerts(ctx.store)) == 130


# -- rows that cannot be stored --------------------------------------------------------------------


def test_a_row_that_cannot_be_parsed_keeps_its_error_and_blocks_nothing(ctx: AppContext):
    ids = journal(
        ctx.store,
        native("db1"),
        {"source": "native", "actor": "token:rob", "body": b"{not json"},
        {"source": "carrier-pigeon", "actor": "token:rob", "body": b"[]"},
        native("db2"),
    )
    drain = Drain(ctx)
    done = drain.drain_once()
    drain.after(done)
    assert done.rows == 2 and set(done.failed) == {ids[1], ids[2]}
    kept = left(ctx.store)
    assert [(r.id, r.attempts) for r in kept] == [(ids[1], 1), (ids[2], 1)]
    assert kept[0].error is not None and kept[0].error.startswith("native body not valid")
    assert kept[1].error == "unknown source 'carrier-pigeon'"
    assert kept[0].body == b"{not json"  # never lost: the body as received
    assert [a.labels["target"] for a in alerts(ctx.store)] == ["db1", "db2"]
    assert not drain.drain_once().progressed  # skipped from now on
    assert sample(ctx.metrics, "maintd_intake_failed_total") == 2
    assert sample(ctx.metrics, "maintd_intake_failed_rows") == 2
    assert sample(ctx.metrics, "maintd_intake_backlog") == 0


def failing_for(actor: str, ctx: AppContext) -> Callable[[Session, list[AlertRequest]], list[list[View]]]:
    """The routes' ingest, failing any transaction that holds a request of ``actor``."""

    def work(session: Session, requests: list[AlertRequest]) -> list[list[View]]:
        if any(r.actor == actor for r in requests):
            raise RuntimeError(f"the pipeline refused {actor}")
        return _ingest(ctx, session, requests)

    return work


def test_a_failing_batch_is_retried_row_by_row_and_only_the_failing_row_is_kept(ctx: AppContext):
    ids = journal(ctx.store, native("db1"), native("db2", actor="token:boom"), native("db3"))
    drain = Drain(ctx, work=failing_for("token:boom", ctx))
    done = drain.drain_once()
    assert done.rows == 2
    assert done.failed == {ids[1]: "RuntimeError: the pipeline refused token:boom"}
    (kept,) = left(ctx.store)
    assert (kept.id, kept.attempts, kept.error) == (
        ids[1],
        1,
        "RuntimeError: the pipeline refused token:boom",
    )
    assert [a.labels["target"] for a in alerts(ctx.store)] == ["db1", "db3"]
    # Set right (error cleared, as docs/alerts.md says), it is drained like any other row.
    with ctx.store.write() as s:
        s.get_one(AlertIntakeRow, kept.id).error = None
    assert Drain(ctx).drain_once().rows == 1
    assert [a.labels["target"] for a in alerts(ctx.store)] == ["db1", "db3", "db2"]


def test_an_unavailable_database_marks_no_row(ctx: AppContext):
    journal(ctx.store, native("db1"), native("db2"))

    def outage(session: Session, requests: list[AlertRequest]) -> list[list[View]]:
        raise OperationalError("INSERT", {}, ConnectionRefusedError("connection refused"))

    with pytest.raises(OperationalError):
        Drain(ctx, work=outage).drain_once()
    assert [(r.attempts, r.error) for r in left(ctx.store)] == [(0, None), (0, None)]


# -- the backlog -----------------------------------------------------------------------------------


def test_the_backlog_and_the_oldest_rows_age_are_read_at_scrape(ctx: AppContext):
    drain = Drain(ctx)
    assert sample(ctx.metrics, "maintd_intake_backlog") == 0
    assert sample(ctx.metrics, "maintd_intake_oldest_seconds") == 0
    journal(ctx.store, native("db1", received_at=T0 - timedelta(seconds=42)), native("db2"))
    assert sample(ctx.metrics, "maintd_intake_backlog") == 2
    assert sample(ctx.metrics, "maintd_intake_oldest_seconds") == 42
    drain.drain_once()
    assert sample(ctx.metrics, "maintd_intake_backlog") == 0


# -- the loop and the processes --------------------------------------------------------------------


def test_the_loop_drains_rows_as_they_come_and_stops_when_told(ctx: AppContext):
    async def scenario() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(Drain(ctx, poll=0.01).run(stop))
        for target in ("db1", "db2"):
            journal(ctx.store, native(target))
            for _ in range(500):  # polls against a deadline, never a fixed wait
                if not left(ctx.store):
                    break
                await asyncio.sleep(0.01)
        stop.set()
        await asyncio.wait_for(task, 5)

    asyncio.run(scenario())
    assert left(ctx.store) == []
    assert [a.labels["target"] for a in alerts(ctx.store)] == ["db1", "db2"]
    assert sample(ctx.metrics, "maintd_alerts_received_total", source="native", outcome="created") == 2


@pytest.mark.parametrize(
    ("sqlite", "seen", "limit", "gap"),
    [
        (True, [], 666, 0.025),  # quiet intake: batches of ~0.1 s at 150 µs an alert
        (True, [10, 10], 666, 0.025),  # nothing written between two looks
        (True, [10, 12], 166, 0.025),  # the intake is writing: batches of ~25 ms
        (False, [10, 12], 2000, 0.0),  # PostgreSQL: row locks, no pacing
    ],
)
def test_the_pace_keeps_sqlite_batches_short_while_the_intake_writes(
    sqlite: bool, seen: list[int], limit: int, gap: float
):
    pace = Pace(sqlite=sqlite)
    for newest in seen:
        pace.saw(newest)
    assert (pace.limit(2000), pace.gap) == (limit, gap)


def test_the_pace_learns_how_long_an_alert_holds_the_lock():
    pace = Pace(sqlite=True)
    for _ in range(30):
        pace.held(0.5, 1000)  # 500 µs an alert, batch after batch
    assert pace.limit(2000) == 200  # 0.1 s of them
    pace.held(0.0, 0)  # an empty batch teaches nothing
    assert pace.limit(2000) == 200


@pytest.fixture
def sqlite_ctx(sqlite_store: Store, write_plan, make_engine) -> AppContext:  # type: ignore[no-untyped-def]
    engine = make_engine(sqlite_store, write_plan(PLAN))
    assert engine.reload().ok
    return AppContext(engine.store, engine.clock, engine.metrics, engine)


def test_the_intake_keeps_committing_while_sqlite_drains_a_backlog(sqlite_ctx: AppContext):
    store = sqlite_ctx.store
    ten = [{"labels": {"alertname": "Backlog", "target": f"t{i}-{j}"}} for i in range(500) for j in range(10)]
    journal(
        store, *[{**native("x"), "body": json.dumps(ten[i : i + 10]).encode()} for i in range(0, 5000, 10)]
    )

    def backlog() -> int:
        with store.read() as s:
            waiting = (
                select(func.count()).select_from(AlertIntakeRow).where(AlertIntakeRow.actor == "token:rob")
            )
            return s.scalar(waiting) or 0

    async def scenario() -> tuple[list[float], list[int]]:
        database = store.url.removeprefix("sqlite:///")
        writer = await asyncio.create_subprocess_exec(
            sys.executable,
            str(WRITER),
            database,
            "100",
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        assert writer.stdin and writer.stdout
        assert await asyncio.wait_for(writer.stdout.readline(), 60) == b"ready\n"
        stop = asyncio.Event()
        task = asyncio.create_task(Drain(sqlite_ctx).run(stop))
        for _ in range(3000):  # polls against a deadline: the writer starts once the drain is at work
            if backlog() < before:
                break
            await asyncio.sleep(0.01)
        writer.stdin.write(b"go\n")
        out, _ = await asyncio.wait_for(writer.communicate(), 60)
        stop.set()
        await asyncio.wait_for(task, 10)
        written = json.loads(out)
        return written["waits"], written["backlog"]

    before = backlog()
    waits, seen = asyncio.run(scenario())
    assert len(waits) == 100
    # Without the pace the drain took the write lock back at once after each batch of 2,000
    # alerts: the writer got in once or twice, then waited for the whole backlog (3 of 100
    # commits went in while rows were left, measured). With it the writer gets in between two
    # short batches, so its commits go in while the drain is still at work (100 of 100, measured;
    # "most" leaves room for a loaded machine). No bound on a wait in seconds: load stretches
    # every wait, paced or not.
    during = sum(1 for left_then in seen if left_then > 0)
    assert during > len(seen) // 2, f"{before} rows before; left at each of the writer's commits: {seen}"


def test_two_drainers_on_postgresql_never_store_a_row_twice(pg_store: Store):
    count = 300
    journal(pg_store, *[native(f"db{i}") for i in range(count)])
    clock = FakeClock(T0)
    stores = [Store(pg_store.url), Store(pg_store.url)]  # two processes' pools
    drains = [Drain(AppContext(s, clock, Metrics()), max_alerts=7) for s in stores]
    start = threading.Barrier(2)

    def run(drain: Drain) -> Drained:
        start.wait()
        total = Drained()
        while (done := drain.drain_once()).progressed or done.busy:
            total.add(done)
        return total

    try:
        with ThreadPoolExecutor(2) as pool:
            totals = list(pool.map(run, drains))
    finally:
        for s in stores:
            s.dispose()
    assert sum(t.rows for t in totals) == count
    assert [o for t in totals for _s, o in t.outcomes].count("created") == count
    with pg_store.read() as s:
        received = s.execute(select(AlertRow.received, func.count()).group_by(AlertRow.received)).all()
    assert received == [(1, count)]  # each alert delivered once: a row taken twice would say 2
    assert left(pg_store) == []


def wait_drained(h: Harness, server: Any, n: int) -> None:
    h.wait_for(f"{n} alerts drained", lambda: len(alerts(h.store)) == n and not left(h.store), server)


def test_maintd_serve_drains_the_journal(world: Harness):
    world.write_plan(PLAN)
    server = world.serve()
    world.wait_ready(server)
    journal(world.store, native("db1"), pagerduty_row("k1"))
    wait_drained(world, server, 2)
    assert len(incidents(world.store)) == 2
    with urllib.request.urlopen(server.url + "/metrics", timeout=5) as response:
        scraped = response.read().decode()
    assert "maintd_intake_backlog 0.0" in scraped
    assert 'maintd_alerts_received_total{outcome="created",source="pagerduty"} 1.0' in scraped


def test_a_drained_alert_pages_the_person_on_call(world: Harness, webhook: Webhook):
    world.write_plan(
        PLAN
        + f"""
    people:
      - {{name: pat, email: pat@example.test, notify: ["{webhook.url("/pat")}"]}}
    escalation_policies:
      - name: ops
        levels:
          - {{after: 0m, notify: [{{person: pat}}]}}
    incidents:
      escalation_policy: ops
      group_wait: 0s
    """
    )
    server = world.serve()
    world.wait_ready(server)
    journal(world.store, native("db1"))
    # Fired in the drain's transaction and sent on its commit, as for the synchronous routes.
    world.wait_for("the page to pat", lambda: webhook.count("/pat") == 1, server)
    assert left(world.store) == []


def test_an_api_replica_drains_the_journal(pg_store: Store, tmp_path: Path):
    h = Harness(pg_store, tmp_path)
    try:
        h.write_plan(PLAN)
        server = h.serve("--role", "api")
        # Not /readyz: that waits for a scheduler's heartbeat, and this test runs none.
        h.wait_for("GET /healthz to answer 200", lambda: http_get(server.url + "/healthz")[0] == 200, server)
        journal(pg_store, native("db1"))
        wait_drained(h, server, 1)
    finally:
        h.cleanup()
