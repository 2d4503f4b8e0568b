"""A task's runs raise an alert after N failures in a row, and resolve it when the check recovers."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

from maintd.engine import Engine
from maintd.store.models import AlertRow, EventRow, IncidentRow, ScheduleRow
from tests.conftest import run

PLAN = """
    targets:
      - {name: db1, kind: database, labels: {team: data}}
    tasks:
      - name: db-check
        kind: command
        targets: [db1]
        schedule: {every: 1m}
        params: {argv: [sh, -c, "cat %s"], read_only: true}
        alert: {after: 2, runbook: "https://runbooks.example/db", labels: {service: orders}%s}
"""


def status_file(tmp_path: Path, code: int) -> None:
    """The check prints this file; its text ends with the exit code the command then returns."""
    (tmp_path / "status").write_text(f"db1 answered {code}\n")
    (tmp_path / "code").write_text(str(code))


def make(store, write_plan, make_engine, tmp_path, extra=""):  # type: ignore[no-untyped-def]
    argv = f"{tmp_path / 'status'}; exit $(cat {tmp_path / 'code'})"
    engine: Engine = make_engine(store, write_plan(PLAN % (argv, extra)))
    assert engine.reload().ok
    return engine


def one_round(engine: Engine) -> None:
    async def go() -> None:
        orders, _ = engine.tick(engine.clock.now())
        await engine.runner.run_all(orders)
        await engine.runner.stop(0)

    run(go())
    engine.clock.advance(60)


def test_an_alert_fires_after_n_failures_in_a_row_and_resolves_on_recovery(
    store, write_plan, make_engine, tmp_path
):
    engine = make(store, write_plan, make_engine, tmp_path)
    status_file(tmp_path, 2)
    one_round(engine)
    with store.read() as s:
        assert s.scalar(select(ScheduleRow.fail_streak)) == 1
        assert s.scalars(select(AlertRow)).all() == []  # one failure is not enough
    one_round(engine)
    with store.read() as s:
        (alert,) = s.scalars(select(AlertRow)).all()
        (incident,) = s.scalars(select(IncidentRow)).all()
    assert alert.status == "firing" and alert.source == "run"
    assert alert.labels == {
        "team": "data",
        "service": "orders",
        "alertname": "db-check",
        "task": "db-check",
        "target": "db1",
        "kind": "command",
    }
    assert alert.annotations["runbook"] == "https://runbooks.example/db"
    assert alert.summary == "db-check on db1: db1 answered 2"
    assert (incident.state, incident.priority) == ("triggered", "P1")  # critical → P1 by the seed's table
    one_round(engine)  # still failing: the same alert, no second incident
    status_file(tmp_path, 0)
    one_round(engine)
    with store.read() as s:
        (alert,) = s.scalars(select(AlertRow)).all()
        (incident,) = s.scalars(select(IncidentRow)).all()
        kinds = list(s.scalars(select(EventRow.kind).where(EventRow.kind.startswith("incident."))))
        streak = s.scalar(select(ScheduleRow.fail_streak))
    assert alert.status == "resolved"
    assert incident.state == "resolved"
    assert kinds == ["incident.opened", "incident.resolved"]
    assert streak == 0


def test_a_fixed_priority_and_statuses_that_count_come_from_the_task(
    store, write_plan, make_engine, tmp_path
):
    engine = make(store, write_plan, make_engine, tmp_path, ", priority: P0, on: [warning]")
    status_file(tmp_path, 1)
    one_round(engine)
    one_round(engine)
    with store.read() as s:
        (incident,) = s.scalars(select(IncidentRow)).all()
    assert incident.priority == "P0" and incident.postmortem_required


def test_a_task_without_alert_settings_never_raises_one(store, write_plan, make_engine, tmp_path):
    argv = f"{tmp_path / 'status'}; exit $(cat {tmp_path / 'code'})"
    plan = (PLAN % (argv, "")).replace(
        '        alert: {after: 2, runbook: "https://runbooks.example/db", labels: {service: orders}}\n', ""
    )
    engine = make_engine(store, write_plan(plan))
    engine.reload()
    status_file(tmp_path, 2)
    for _ in range(3):
        one_round(engine)
    with store.read() as s:
        assert s.scalars(select(AlertRow)).all() == []
        assert s.scalar(select(ScheduleRow.fail_streak)) == 3


def test_a_failure_that_gets_worse_raises_its_incident_and_never_lowers_it(
    store, write_plan, make_engine, tmp_path
):
    rules = (
        "\n    incidents:\n      rules:\n        - {match: [kind=command, severity=critical], priority: P0}\n"
    )
    argv = f"{tmp_path / 'status'}; exit $(cat {tmp_path / 'code'})"
    plan = PLAN % (argv, ", on: [warning, critical, unknown]") + rules
    engine = make_engine(store, write_plan(plan))
    assert engine.reload().ok
    status_file(tmp_path, 1)
    one_round(engine)  # one warning: not yet (after: 2)
    for code, priority in [(1, "P3"), (3, "P2"), (2, "P0"), (1, "P0")]:
        status_file(tmp_path, code)  # warning, unknown (error), critical, warning again
        one_round(engine)
        with store.read() as s:
            (incident,) = s.scalars(select(IncidentRow)).all()
            (alert,) = s.scalars(select(AlertRow)).all()
        assert incident.priority == priority, (code, incident.priority)
    assert alert.severity == "critical" and alert.status == "firing"
    assert incident.postmortem_required  # raised to P0 on the way
    with store.read() as s:
        raised = s.scalars(select(EventRow).where(EventRow.kind == "incident.priority").order_by(EventRow.id))
        assert [(e.payload["from"], e.payload["to"]) for e in raised] == [("P3", "P2"), ("P2", "P0")]
        worse = s.scalars(select(EventRow).where(EventRow.kind == "alert.severity").order_by(EventRow.id))
        assert [(e.payload["was"], e.payload["to"]) for e in worse] == [
            ("warning", "error"),
            ("error", "critical"),
        ]
    status_file(tmp_path, 0)
    one_round(engine)
    with store.read() as s:
        assert s.scalar(select(AlertRow.status)) == "resolved"
