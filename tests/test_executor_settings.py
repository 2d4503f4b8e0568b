"""Executor settings in the plan (``runner.executor``) under the flags and environment.

Each field comes from a flag or ``MAINTD_*`` variable when one is set, else from the plan, else
the default; the broker URL is a secret reference resolved in the process's environment (or a
URL without a password); celery without a broker stops ``maintd serve`` with an error saying
where to set one. (tests/test_executor_faults.py: a worker taking the broker from the stored plan.)
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from pydantic import ValidationError

from maintd.engine import EXECUTOR_CHANGED
from maintd.plan.models import RunnerSettings
from maintd.settings import Settings
from maintd.store.db import Store
from tests.harness import Harness, http_get

PG = "postgresql://postgres@127.0.0.1:5432/x"


def section(**fields: object) -> RunnerSettings:
    return RunnerSettings.model_validate({"executor": fields})


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in (
        "MAINTD_EXECUTOR",
        "MAINTD_BROKER_URL",
        "MAINTD_QUEUE",
        "MAINTD_BROKER_VISIBILITY",
        "MAINTD_REAPER_INTERVAL",
        "MAINTD_REAPER_GRACE",
    ):
        monkeypatch.delenv(var, raising=False)


def test_the_plan_sets_what_no_flag_or_variable_sets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BROKER_FOR_TEST", "redis://127.0.0.1:6379/3")
    monkeypatch.setenv("MAINTD_QUEUE", "from-env")
    monkeypatch.setenv("MAINTD_REAPER_GRACE", "7")
    plan = section(
        kind="celery",
        broker_url="env:BROKER_FOR_TEST",
        queue="from-plan",
        visibility_timeout="10m",
        reaper_interval="15s",
        reaper_grace="5m",
    ).executor
    settings = Settings.from_env(database_url=PG).with_plan(plan)
    assert settings.executor == "celery"
    assert settings.broker_url == "redis://127.0.0.1:6379/3"  # resolved here, never stored
    assert settings.queue == "from-env"
    assert settings.visibility_timeout == 600.0
    assert settings.reaper_interval == 15.0
    assert settings.reaper_grace == 7.0
    settings.check_executor()

    flagged = Settings.from_env(database_url=PG, executor="local", broker_url="redis://h:1/0").with_plan(plan)
    assert (flagged.executor, flagged.broker_url) == ("local", "redis://h:1/0")


def test_no_plan_section_keeps_the_local_default() -> None:
    settings = Settings.from_env(database_url=PG).with_plan(RunnerSettings().executor)
    assert (settings.executor, settings.queue, settings.reaper_interval) == ("local", "maintd", 30.0)
    settings.check_executor()


def test_celery_without_a_broker_and_an_unset_reference_are_clear_errors(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = Settings.from_env(database_url=PG).with_plan(section(kind="celery").executor)
    with pytest.raises(ValueError, match=r"executor celery needs a broker: set runner.executor.broker_url"):
        settings.check_executor()
    with pytest.raises(ValueError, match=r"runner.executor.broker_url: .*NOT_SET_ANYWHERE, which is not set"):
        Settings.from_env(database_url=PG).with_plan(
            section(kind="celery", broker_url="env:NOT_SET_ANYWHERE").executor
        )
    monkeypatch.setenv("MAINTD_REAPER_INTERVAL", "soon")
    with pytest.raises(ValueError, match="MAINTD_REAPER_INTERVAL must be a number of seconds, not 'soon'"):
        Settings.from_env(database_url=PG)


@pytest.mark.parametrize(
    ("fields", "problem"),
    [
        ({"broker_url": "redis://:hunter2@127.0.0.1:6379/0"}, "with a password does not belong in the plan"),
        ({"broker_url": "http://127.0.0.1/"}, "broker URL scheme 'http'"),
        ({"broker_url": "env:lower case"}, "a secret is a reference"),
        ({"kind": "kubernetes"}, "'local' or 'celery'"),
        ({"reaper_interval": "0s"}, "must be at least 1s"),
        ({"brokers": "x"}, "brokers"),
    ],
)
def test_bad_executor_sections_are_refused(fields: dict[str, object], problem: str) -> None:
    with pytest.raises(ValidationError, match=problem):
        section(**fields)


PLAN = """
    runner:
      executor: {kind: celery}
    targets:
      - {name: local, kind: host}
"""


def test_serve_with_celery_and_no_broker_stops_saying_where_to_set_one(
    pg_store: Store, tmp_path: Path
) -> None:
    world = Harness(pg_store, tmp_path)
    try:
        world.write_plan(PLAN)
        api = world.serve("--role", "api")  # sends nothing to workers: needs no broker
        world.wait_for("the API to answer", lambda: http_get(api.url + "/healthz")[0] == 200, api)
        server = world.serve("--role", "scheduler")
        assert server.wait_exit(60) == 2
        assert "executor celery needs a broker: set runner.executor.broker_url in the plan" in server.stderr()
        assert api.proc.poll() is None
    finally:
        world.cleanup()


def test_celery_from_the_plan_is_refused_on_sqlite(sqlite_world: Harness) -> None:
    sqlite_world.write_plan(PLAN)
    sqlite_world.env["MAINTD_BROKER_URL"] = "redis://127.0.0.1:6379/13"
    server = sqlite_world.serve()
    assert server.wait_exit(60) == 2
    assert "executor celery needs PostgreSQL" in server.stderr()


def test_a_reload_that_changes_the_executor_says_it_waits_for_the_next_start(
    sqlite_store: Store, write_plan, make_engine, caplog: pytest.LogCaptureFixture
) -> None:
    engine = make_engine(sqlite_store, write_plan("targets: []\ntasks: []\n"))
    assert engine.reload().ok and engine.last_reload.warnings == []
    celery = "runner:\n  executor: {kind: celery, broker_url: 'redis://127.0.0.1:6379/0'}\n"
    write_plan("targets: []\ntasks: []\n" + celery)
    with caplog.at_level(logging.WARNING, logger="maintd.engine"):
        result = engine.reload()
    assert result.ok and result.warnings == [EXECUTOR_CHANGED]
    assert EXECUTOR_CHANGED in caplog.text
    write_plan("targets: []\ntasks: [] # the same section again\n" + celery)
    assert engine.reload().warnings == []  # said once, for the change
