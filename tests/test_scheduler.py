"""The engine's scheduling, on both stores: due times, windows, misfires, retries, restarts."""

from __future__ import annotations

import os
import uuid
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from maintd.engine import Engine
from maintd.scheduler import orders
from maintd.store.models import EventRow, RunRow, ScheduleRow
from tests.conftest import T0, run

EVERY_MINUTE = """
    targets:
      - {name: web, kind: service}
      - {name: db, kind: database}
    tasks:
      - name: ping
        kind: command
        targets: [web, db]
        schedule: {every: 1m}
        params: {argv: ["true"], read_only: true}
"""

NIGHTLY = """
    targets:
      - {name: db, kind: database}
    tasks:
      - name: vacuum
        kind: command
        targets: [db]
        schedule: {cadence: daily, window: "02:00-03:00 UTC"%s}
        params: {argv: [%s], read_only: true}
        timeout: 2h
"""


def tick_and_run(engine: Engine) -> list[str]:
    """One scheduler pass at the clock's time; returns 'task/target' of what ran."""

    async def go() -> list[str]:
        orders, _ = engine.tick(engine.clock.now())
        await engine.runner.run_all(orders)
        await engine.runner.stop(0)
        return sorted(f"{o.task.name}/{o.target.name}" for o in orders)

    return run(go())  # type: ignore[no-any-return]


def runs_of(store, **where) -> list[RunRow]:  # type: ignore[no-untyped-def]
    with store.read() as s:
        stmt = select(RunRow).order_by(RunRow.started_at, RunRow.target)
        for key, value in where.items():
            stmt = stmt.where(getattr(RunRow, key) == value)
        return list(s.scalars(stmt))


def event_kinds(store) -> list[str]:  # type: ignore[no-untyped-def]
    with store.read() as s:
        return list(s.scalars(select(EventRow.kind).order_by(EventRow.id)))


def test_an_interval_task_runs_at_once_then_every_interval(store, write_plan, make_engine, clock):
    engine = make_engine(store, write_plan(EVERY_MINUTE))
    assert engine.reload().ok
    assert tick_and_run(engine) == ["ping/db", "ping/web"]
    assert tick_and_run(engine) == []  # nothing due until a minute has passed
    clock.advance(59)
    assert tick_and_run(engine) == []
    clock.advance(1)
    assert tick_and_run(engine) == ["ping/db", "ping/web"]
    assert [r.status for r in runs_of(store)] == ["ok"] * 4
    assert all(r.state == "finished" and r.in_window for r in runs_of(store))


def test_a_daily_cadence_runs_once_at_the_start_of_its_window(store, write_plan, make_engine, clock):
    engine = make_engine(store, write_plan(NIGHTLY % ("", '"true"')))
    engine.reload()
    assert tick_and_run(engine) == []  # 01:00, the window opens at 02:00
    clock.set(T0.replace(hour=2))
    assert tick_and_run(engine) == ["vacuum/db"]
    clock.set(T0.replace(hour=2, minute=30))
    assert tick_and_run(engine) == []  # once per window
    (only,) = runs_of(store)
    assert only.scheduled_for == T0.replace(hour=2)
    assert only.window_end == T0.replace(hour=3)
    with store.read() as s:
        assert s.scalar(select(ScheduleRow.due_at)) == T0.replace(hour=2) + timedelta(days=1)


def test_a_run_still_going_at_the_end_of_its_window_is_stopped_as_overrun(
    store, write_plan, make_engine, clock
):
    engine = make_engine(store, write_plan(NIGHTLY % ("", '"sleep", "30"')))
    engine.reload()
    clock.set(T0.replace(hour=2, minute=59, second=59, microsecond=800_000))
    engine.reload()  # the window is open: due now
    assert tick_and_run(engine) == ["vacuum/db"]
    (overrun,) = runs_of(store)
    assert overrun.stop_reason == "overrun"
    assert overrun.status == "unknown"
    assert "end of its window" in overrun.output
    assert overrun.duration_ms < 5000  # stopped, not left to sleep 30 s
    assert "run.overrun" in event_kinds(store)


def test_a_run_past_its_timeout_is_stopped_and_recorded_as_timeout(store, write_plan, make_engine):
    engine = make_engine(
        store,
        write_plan("""
            targets: [{name: h, kind: host}]
            tasks:
              - {name: slow, kind: command, targets: [h], schedule: {every: 1h}, timeout: 200ms,
                 params: {argv: [sleep, "30"], read_only: true}}
        """),
    )
    engine.reload()
    tick_and_run(engine)
    (slow,) = runs_of(store)
    assert (slow.stop_reason, slow.status) == ("timeout", "unknown")
    assert "timed out after" in slow.output


def test_a_missed_window_runs_once_late_by_default(store, write_plan, make_engine, clock):
    engine = make_engine(store, write_plan(NIGHTLY % ("", '"true"')))
    engine.reload()
    clock.set(T0 + timedelta(days=3, hours=9))  # down for three nights
    assert tick_and_run(engine) == ["vacuum/db"]
    (late,) = runs_of(store)
    assert late.trigger == "misfire"
    assert late.in_window is False
    assert "run.misfire" in event_kinds(store)
    assert tick_and_run(engine) == []  # one catch-up, not three


def test_a_missed_window_with_misfire_skip_waits_for_the_next_window(store, write_plan, make_engine, clock):
    engine = make_engine(store, write_plan(NIGHTLY % (", misfire: skip", '"true"')))
    engine.reload()
    clock.set(T0 + timedelta(days=1, hours=9))
    assert tick_and_run(engine) == []
    assert "run.missed" in event_kinds(store)
    clock.set(T0 + timedelta(days=2, hours=1))  # the next window (02:00 on day 2)
    assert tick_and_run(engine) == ["vacuum/db"]


def test_a_failed_run_is_retried_with_backoff_before_the_next_regular_run(
    store, write_plan, make_engine, clock
):
    engine = make_engine(
        store,
        write_plan("""
            targets: [{name: h, kind: host}]
            tasks:
              - name: flaky
                kind: command
                targets: [h]
                schedule: {every: 1h}
                retries: {attempts: 3, backoff: 10s, factor: 2}
                params: {argv: [sh, -c, "exit 2"], read_only: true}
        """),
    )
    engine.reload()
    assert tick_and_run(engine) == ["flaky/h"]
    clock.advance(9)
    assert tick_and_run(engine) == []
    clock.advance(1)
    assert tick_and_run(engine) == ["flaky/h"]  # attempt 2 after 10 s
    clock.advance(19)
    assert tick_and_run(engine) == []
    clock.advance(1)
    assert tick_and_run(engine) == ["flaky/h"]  # attempt 3 after 20 s more
    clock.advance(600)
    assert tick_and_run(engine) == []  # attempts exhausted; next regular run at +1h
    assert [(r.trigger, r.attempt, r.status) for r in runs_of(store)] == [
        ("schedule", 1, "critical"),
        ("retry", 2, "critical"),
        ("retry", 3, "critical"),
    ]


def test_a_warning_is_not_retried_by_default(store, write_plan, make_engine, clock):
    engine = make_engine(store, write_plan(EVERY_MINUTE.replace('["true"]', '["false"]')))
    engine.reload()
    tick_and_run(engine)
    clock.advance(59)
    assert tick_and_run(engine) == []


def test_a_status_change_is_an_event_and_a_repeat_is_not(store, write_plan, make_engine, clock):
    engine = make_engine(store, write_plan(EVERY_MINUTE.replace('["true"]', '["false"]')))
    engine.reload()
    tick_and_run(engine)
    clock.advance(60)
    tick_and_run(engine)
    with store.read() as s:
        changes = s.scalars(select(EventRow).where(EventRow.kind == "task.status")).all()
    assert sorted((e.subject, e.payload["from"], e.payload["to"]) for e in changes) == [
        ("task:ping/db", None, "warning"),
        ("task:ping/web", None, "warning"),
    ]


def test_a_task_running_on_a_target_is_not_claimed_again(store, write_plan, make_engine, clock):
    engine = make_engine(store, write_plan(EVERY_MINUTE))
    engine.reload()
    first, _ = engine.tick(clock.now())  # claimed, never executed: still running
    clock.advance(300)
    again, _ = engine.tick(clock.now())
    assert len(first) == 2
    assert again == []
    with store.read() as s:
        assert s.scalar(select(func.count()).select_from(RunRow)) == 2


def test_a_restart_neither_loses_nor_repeats_a_due_run(store, write_plan, make_engine, clock):
    plan = write_plan(EVERY_MINUTE)
    first = make_engine(store, plan)
    first.reload()
    tick_and_run(first)
    clock.advance(60)
    claimed, _ = first.tick(clock.now())  # the process dies here, runs claimed but not finished
    assert len(claimed) == 2

    second = make_engine(store, plan)
    assert sorted(second.recover()) == sorted(o.run_id for o in claimed)
    second.reload()
    assert tick_and_run(second) == ["ping/db", "ping/web"]  # owed: run once more, as recovery
    assert tick_and_run(second) == []
    by_trigger = [(r.trigger, r.state) for r in runs_of(store)]
    assert by_trigger.count(("recovery", "finished")) == 2
    assert by_trigger.count(("schedule", "interrupted")) == 2
    assert "run.interrupted" in event_kinds(store)


def test_reloading_an_unchanged_plan_keeps_due_times(store, write_plan, make_engine, clock):
    plan = write_plan(NIGHTLY % ("", '"true"'))
    engine = make_engine(store, plan)
    engine.reload()
    clock.advance(600)
    result = engine.reload()
    assert result.ok and not result.changed
    with store.read() as s:
        assert s.scalar(select(ScheduleRow.due_at)) == T0.replace(hour=2)
    assert event_kinds(store).count("plan.loaded") == 1


def test_a_changed_schedule_is_recomputed_and_a_removed_task_deactivated(store, write_plan, make_engine):
    plan = write_plan(NIGHTLY % ("", '"true"'))
    engine = make_engine(store, plan)
    engine.reload()
    write_plan((NIGHTLY % ("", '"true"')).replace("02:00-03:00", "04:00-05:00"))
    assert engine.reload().changed
    with store.read() as s:
        assert s.scalar(select(ScheduleRow.due_at)) == T0.replace(hour=4)
    write_plan(EVERY_MINUTE)
    engine.reload()
    with store.read() as s:
        rows = {r.task: r.active for r in s.scalars(select(ScheduleRow))}
    assert rows == {"vacuum": False, "ping": True}


def test_an_invalid_plan_is_rejected_and_the_running_plan_kept(store, write_plan, make_engine, clock):
    plan = write_plan(EVERY_MINUTE)
    engine = make_engine(store, plan)
    good = engine.reload()
    write_plan("tasks: [oops\n")
    bad = engine.reload(actor="user:test")
    assert not bad.ok
    assert "plan.yaml" in bad.problems[0]
    assert engine.loaded is not None and engine.loaded.digest == good.digest
    assert tick_and_run(engine) == ["ping/db", "ping/web"]
    with store.read() as s:
        rejected = s.scalar(select(EventRow).where(EventRow.kind == "plan.rejected"))
    assert rejected is not None and rejected.actor == "user:test"
    assert rejected.payload["kept"] == good.digest


def test_a_disabled_task_gets_no_schedule(store, write_plan, make_engine):
    engine = make_engine(
        store,
        write_plan(
            EVERY_MINUTE.replace("schedule: {every: 1m}", "enabled: false\n        schedule: {every: 1m}")
        ),
    )
    engine.reload()
    assert tick_and_run(engine) == []


def test_a_claims_run_ids_are_the_uuids_uuid4_makes_of_the_same_random_bytes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    pool = os.urandom(16 * 300)
    monkeypatch.setattr(os, "urandom", lambda n: pool[:n])
    ids = orders.new_run_ids(300)
    assert ids == [uuid.UUID(bytes=pool[i : i + 16], version=4).hex for i in range(0, len(pool), 16)]
    assert orders.new_run_ids(0) == []
