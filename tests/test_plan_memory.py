"""A loaded plan shares its equal immutable parts, and that sharing cannot be seen.

Tasks on one schedule hold one ``Schedule``; every empty mapping is one refusing ``EMPTY``;
models with the same fields given share one fields set; tasks with equal params share one
kind config. None of it may leak a change from one task to another, or change what a plan
loads as, dumps as, or how it compares.
"""

from __future__ import annotations

import copy
import json
import pickle
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, ConfigDict, ValidationError
from sqlalchemy import select

from maintd.plan.base import EMPTY, StrictModel, shared
from maintd.plan.loader import load_plan, plan_from_document
from maintd.plan.models import Plan, Task
from maintd.plan.schedule import Schedule
from maintd.registry import Registry
from maintd.scheduler.sync import spec_digest, sync_schedules
from maintd.store.db import Store
from maintd.store.models import ScheduleRow

_PLAN = """\
targets:
  - {name: web, kind: service, labels: {env: prod}}
  - {name: db, kind: database}
tasks:
  - {name: ping-web, kind: tcp, targets: [web], schedule: {cron: "*/5 * * * *"}, params: {port: 443}}
  - {name: ping-db, kind: tcp, targets: [db], schedule: {cron: "*/5 * * * *"}, params: {port: 443}}
  - name: nightly
    kind: tcp
    targets: {labels: {env: prod}}
    schedule: {cron: "*/5 * * * *", misfire: run_once}
    params: {port: 5432}
"""
# load_plan(_PLAN).digest before any sharing (commit 7d152b8): sharing must not change it.
_DIGEST = "c6a3697f0ae37a5090ca37a1bdbee6ad600a4e67959dfca51bccd4035b328a51"


@pytest.fixture
def plan_file(tmp_path: Path) -> Path:
    path = tmp_path / "plan.yaml"
    path.write_text(_PLAN)
    return path


def _task(name: str, schedule: dict[str, Any] | None = None) -> Task:
    raw = {"name": name, "kind": "tcp", "targets": ["web"], "schedule": schedule or {"cron": "0 3 * * *"}}
    return Task.model_validate(raw)


def test_tasks_on_equal_schedules_share_one_schedule() -> None:
    first, second, other = _task("a"), _task("b"), _task("c", {"cron": "0 4 * * *"})
    assert first.schedule is second.schedule
    assert other.schedule is not first.schedule


def test_a_schedule_given_a_default_explicitly_is_not_shared_with_one_that_left_it_out() -> None:
    implicit, explicit = _task("a"), _task("b", {"cron": "0 3 * * *", "misfire": "run_once"})
    assert implicit.schedule == explicit.schedule
    assert implicit.schedule is not explicit.schedule
    assert explicit.schedule.model_dump(exclude_unset=True) == {"cron": "0 3 * * *", "misfire": "run_once"}
    assert implicit.schedule.model_dump(exclude_unset=True) == {"cron": "0 3 * * *"}


def test_a_shared_schedule_cannot_be_changed_through_one_task() -> None:
    first, second = _task("a"), _task("b")
    with pytest.raises(ValidationError, match="frozen"):
        first.schedule.cron = "0 5 * * *"  # type: ignore[misc]
    assert second.schedule.cron == "0 3 * * *"


def test_an_empty_mapping_is_shared_and_refuses_every_change() -> None:
    first, second = _task("a"), _task("b")
    assert first.params is second.labels is EMPTY
    changes = [
        lambda m: m.__setitem__("port", 1),
        lambda m: m.update(port=1),
        lambda m: m.setdefault("port", 1),
        lambda m: m.__ior__({"port": 1}),
        lambda m: m.pop("port"),
        lambda m: m.popitem(),
        lambda m: m.__delitem__("port"),
        lambda m: m.clear(),
    ]
    for change in changes:
        with pytest.raises(TypeError, match="cannot be changed"):
            change(first.params)
    assert second.params == {} and second.labels == {}


def test_an_empty_mapping_still_is_a_dict_that_copies_pickles_and_serialises_as_one() -> None:
    task = _task("a")
    assert isinstance(task.params, dict) and task.params == {}
    assert copy.copy(task.params) is EMPTY and copy.deepcopy(task.params) is EMPTY
    assert type(pickle.loads(pickle.dumps(task.params))) is dict
    assert json.dumps(task.params) == "{}"
    assert task.model_dump()["params"] == {} and task.model_dump_json().count('"params":{}') == 1


def test_a_mapping_with_items_is_the_tasks_own() -> None:
    first = Task.model_validate({**_task("a").model_dump(), "labels": {"team": "db"}})
    second = Task.model_validate({**_task("b").model_dump(), "labels": {"team": "db"}})
    assert first.labels == second.labels and first.labels is not second.labels


def test_a_copy_with_changes_leaves_the_other_tasks_fields_set_alone() -> None:
    first, second = _task("a"), _task("b")
    assert first.model_fields_set is second.model_fields_set
    changed = first.model_copy(update={"owner": "ops", "labels": {"team": "db"}})
    assert changed.model_fields_set == {"name", "kind", "targets", "schedule", "owner", "labels"}
    assert second.model_fields_set == {"name", "kind", "targets", "schedule"}
    assert second.owner is None and second.labels == {}


def test_a_model_that_can_change_keeps_its_own_parts() -> None:
    class Mutable(StrictModel):
        model_config = ConfigDict(frozen=False)
        labels: dict[str, str] = {}

    first, second = Mutable(), Mutable()
    first.labels["team"] = "db"
    first.labels = {"x": "y"}
    assert second.labels == {} and second.model_fields_set == set()
    assert shared(Mutable()) is not shared(Mutable())


@pytest.mark.parametrize(("one", "other"), [(1, True), (0.0, -0.0), (1, 1.0)])
def test_values_that_compare_equal_but_differ_are_not_shared(one: object, other: object) -> None:
    class Value(StrictModel):
        value: int | float | bool

    assert shared(Value(value=one)) is not shared(Value(value=other))  # type: ignore[arg-type]
    assert shared(Value(value=one)) is shared(Value(value=one))  # type: ignore[arg-type]


def test_a_model_holding_a_list_or_a_nested_model_is_not_shared() -> None:
    class Holder(StrictModel):
        items: list[str] = []
        schedule: Schedule | None = None

    assert shared(Holder(items=["a"])) is not shared(Holder(items=["a"]))
    cron = Schedule(cron="0 3 * * *")
    assert shared(Holder(schedule=cron)) is not shared(Holder(schedule=cron))


def test_tasks_with_equal_params_share_one_frozen_kind_config(plan_file: Path, registry: Registry) -> None:
    loaded = load_plan(plan_file, registry)
    assert loaded.configs["ping-web"] is loaded.configs["ping-db"]
    assert loaded.configs["nightly"] is not loaded.configs["ping-web"]
    again = plan_from_document(loaded.document, registry)
    assert again.configs["ping-web"] is again.configs["ping-db"]


def test_a_kind_config_that_can_change_is_not_shared() -> None:
    class Loose(BaseModel):
        model_config = ConfigDict(extra="forbid")

    assert shared(Loose()) is not shared(Loose())


def test_a_plan_loads_dumps_and_compares_as_before(plan_file: Path, registry: Registry) -> None:
    loaded = load_plan(plan_file, registry)
    assert loaded.digest == _DIGEST
    again = plan_from_document(loaded.document, registry)
    assert again.digest == loaded.digest
    # (Plans compare with their cached target index too: the loaded one has built it.)
    assert (again.plan.targets, again.plan.tasks) == (loaded.plan.targets, loaded.plan.tasks)
    assert again.plan == plan_from_document(loaded.document, registry).plan
    assert again.plan.model_dump(mode="json") == loaded.plan.model_dump(mode="json")
    nightly = loaded.plan.task("nightly")
    assert nightly.schedule.model_dump(exclude_unset=True) == {"cron": "*/5 * * * *", "misfire": "run_once"}
    assert [t.name for t in loaded.plan.targets_of(nightly)] == ["web"]


def test_a_target_name_given_twice_selects_both_in_plan_order() -> None:
    targets = [{"name": "web", "kind": "service"}, {"name": "db", "kind": "database"}]
    plan = Plan.model_validate({"targets": [*targets, {"name": "web", "kind": "host"}]})
    assert [(t.name, t.kind) for t in plan.targets_of(_task("a"))] == [("web", "service"), ("web", "host")]


def test_tasks_on_one_shared_schedule_get_the_same_rows_as_on_equal_ones(
    plan_file: Path, registry: Registry, sqlite_store: Store
) -> None:
    loaded = load_plan(plan_file, registry)
    schedules = [task.schedule for task in loaded.plan.tasks]
    assert schedules[0] is schedules[1] and schedules[2] is not schedules[0]  # misfire given
    now = datetime(2026, 11, 27, 1, 2, tzinfo=UTC)
    with sqlite_store.write() as session:
        sync_schedules(session, loaded, now)
    with sqlite_store.read() as session:
        rows = {r.task: r for r in session.scalars(select(ScheduleRow))}
    assert {task: (row.spec, row.due_at) for task, row in rows.items()} == {
        task.name: (spec_digest(task), datetime(2026, 11, 27, 1, 5, tzinfo=UTC)) for task in loaded.plan.tasks
    }
    assert len(rows) == 3
