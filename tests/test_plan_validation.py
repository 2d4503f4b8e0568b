"""Plan validation, driven by the plans in tests/plans/.

Every plan under ``plans/good/`` must load. Every entry under ``plans/bad/`` (a file, or a
directory read as one plan) must fail with exactly the problems declared next to it, one
leading comment per problem::

    # expect: <line>: <field>: <part of the message>

where ``-`` stands for "no line" or "no field" (a problem with the file as a whole).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from maintd.plan.loader import LoadedPlan, PlanError, Problem, load_plan
from maintd.plan.schema import json_schema
from maintd.registry import Registry

PLANS = Path(__file__).parent / "plans"
GOOD = sorted(PLANS.joinpath("good").iterdir())
BAD = sorted(PLANS.joinpath("bad").iterdir())
_EXPECT = re.compile(r"^#\s*expect:\s*(?P<line>\d+|-)\s*:\s*(?P<field>\S+)\s*:\s*(?P<message>.*\S)\s*$")


@pytest.fixture(autouse=True)
def _secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    """The good plans refer to MAINTD_PLAN_TEST_TOKEN; the bad ones to an unset variable."""
    monkeypatch.setenv("MAINTD_PLAN_TEST_TOKEN", "not-a-real-token")
    monkeypatch.delenv("MAINTD_PLAN_TEST_MISSING", raising=False)


@dataclass(frozen=True)
class Expected:
    file: Path
    line: int | None
    field: str
    message: str

    def matches(self, problem: Problem) -> bool:
        return (
            Path(problem.file).resolve() == self.file.resolve()
            and problem.line == self.line
            and problem.field == self.field
            and self.message in problem.message
        )

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.field or '-'}: ...{self.message}..."


def plan_files(case: Path) -> list[Path]:
    return sorted(p for p in case.rglob("*") if p.suffix in (".yaml", ".yml")) if case.is_dir() else [case]


def expectations(case: Path) -> list[Expected]:
    """The ``# expect:`` comments in the leading comment block of each file of ``case``."""
    found = []
    for file in plan_files(case):
        for text in file.read_text().splitlines():
            if not text.startswith("#"):
                break
            if match := _EXPECT.match(text):
                line, field = match["line"], match["field"]
                found.append(
                    Expected(
                        file,
                        None if line == "-" else int(line),
                        "" if field == "-" else field,
                        match["message"],
                    )
                )
    return found


def problems_of(case: Path, registry: Registry) -> list[Problem]:
    with pytest.raises(PlanError) as caught:
        load_plan(case, registry)
    return caught.value.problems


def load(case: Path, registry: Registry) -> LoadedPlan:
    try:
        return load_plan(case, registry)
    except PlanError as exc:
        pytest.fail(f"{case} should load, but:\n{exc}")


# --- the plan folders -----------------------------------------------------------------------------------


def test_the_plan_folders_hold_cases() -> None:
    assert len(GOOD) >= 3
    assert any(case.is_dir() for case in GOOD)
    assert len(BAD) >= 15


@pytest.mark.parametrize("case", GOOD, ids=lambda p: p.name)
def test_every_good_plan_loads_without_warnings(case: Path, registry: Registry) -> None:
    loaded = load(case, registry)
    assert loaded.plan.targets
    assert loaded.plan.tasks
    assert loaded.warnings == []
    assert sorted(loaded.configs) == sorted(task.name for task in loaded.plan.tasks)
    assert [Path(f) for f in loaded.files] == plan_files(case)


@pytest.mark.parametrize("case", BAD, ids=lambda p: p.name)
def test_every_bad_plan_reports_exactly_the_problems_declared_next_to_it(
    case: Path, registry: Registry
) -> None:
    expected = expectations(case)
    assert expected, f"{case} declares no '# expect:' comment"
    problems = problems_of(case, registry)
    unmatched = list(problems)
    missing = []
    for want in expected:
        hit = next((p for p in unmatched if want.matches(p)), None)
        if hit is None:
            missing.append(want)
        else:
            unmatched.remove(hit)
    report = "\n".join(str(p) for p in problems)
    assert not missing, "expected but not reported:\n" + "\n".join(map(str, missing)) + f"\ngot:\n{report}"
    assert not unmatched, "reported but not expected:\n" + "\n".join(map(str, unmatched))
    assert all(p.severity == "error" for p in problems)


def test_the_expect_comments_are_read_as_written(tmp_path: Path) -> None:
    plan = tmp_path / "plan.yaml"
    plan.write_text(
        "# a description\n# expect: 4: tasks[0].name: defined: twice\n# expect: -: -: whole file\ntasks: []\n"
        "# expect: 9: ignored: after the leading comments\n"
    )
    assert expectations(plan) == [
        Expected(plan, 4, "tasks[0].name", "defined: twice"),
        Expected(plan, None, "", "whole file"),
    ]


# --- problems -------------------------------------------------------------------------------------------


def test_every_problem_in_a_plan_is_reported_not_only_the_first(registry: Registry) -> None:
    problems = problems_of(PLANS / "bad" / "three_problems.yaml", registry)
    assert len(problems) == 3
    assert [p.field for p in problems] == [
        "targets[0].kind",
        "tasks[0].schedule.every",
        "tasks[1].targets[0]",
    ]
    assert len({p.line for p in problems}) == 3


def test_a_problem_reads_as_file_line_severity_field_message() -> None:
    problem = Problem("plan/a.yaml", 12, "tasks[0].timeout", "timeout must be longer than 0s")
    assert str(problem) == "plan/a.yaml:12: error: tasks[0].timeout: timeout must be longer than 0s"
    assert str(Problem("plan/a.yaml", None, "", "no such file or directory")) == (
        "plan/a.yaml: error: no such file or directory"
    )


def test_a_plan_error_lists_every_problem_in_its_message(registry: Registry) -> None:
    with pytest.raises(PlanError) as caught:
        load_plan(PLANS / "bad" / "three_problems.yaml", registry)
    lines = str(caught.value).splitlines()
    assert len(lines) == 3
    assert all(": error: " in line and "three_problems.yaml:" in line for line in lines)


def test_a_label_selector_matching_no_target_is_a_warning_not_an_error(
    write_plan: Callable[..., Path], registry: Registry
) -> None:
    plan_dir = write_plan(
        """
        targets:
          - name: web
            kind: service
            labels: {env: prod}
        tasks:
          - name: staging-health
            kind: http
            targets: {labels: {env: staging}}
            schedule: {every: 1m}
        """
    )
    loaded = load_plan(plan_dir, registry)
    assert loaded.plan.task("staging-health").targets.labels == {"env": "staging"}
    [warning] = loaded.warnings
    assert warning.severity == "warning"
    assert (Path(warning.file).name, warning.line, warning.field) == (
        "plan.yaml",
        8,
        "tasks[0].targets.labels",
    )
    assert "no target has these labels" in warning.message
    assert ": warning: " in str(warning)


def test_a_label_selector_matching_a_target_gives_no_warning(
    write_plan: Callable[..., Path], registry: Registry
) -> None:
    plan_dir = write_plan(
        """
        targets:
          - name: web
            kind: service
            labels: {env: staging}
        tasks:
          - name: staging-health
            kind: http
            targets: {labels: {env: staging}}
            schedule: {every: 1m}
        """
    )
    loaded = load_plan(plan_dir, registry)
    assert loaded.warnings == []
    assert [t.name for t in loaded.plan.targets_of(loaded.plan.task("staging-health"))] == ["web"]


@pytest.mark.parametrize(
    ("yaml_text", "field", "value"),
    [
        # YAML 1.1 would read these words as booleans; the plan takes them as written.
        ("retries: {on: [warning, critical]}", "retries", {"on": ["warning", "critical"]}),
        (
            "labels: {backup: no, public: off, env: on}",
            "labels",
            {"backup": "no", "public": "off", "env": "on"},
        ),
    ],
)
def test_yes_no_on_and_off_are_words_not_booleans(
    write_plan: Callable[..., Path], registry: Registry, yaml_text: str, field: str, value: dict[str, Any]
) -> None:
    plan_dir = write_plan(
        f"""
        targets:
          - name: web
            kind: service
        tasks:
          - name: ping
            kind: http
            targets: [web]
            schedule: {{every: 1m}}
            {yaml_text}
        """
    )
    task = load_plan(plan_dir, registry).document["tasks"][0]
    assert {k: task[field][k] for k in value} == value


def test_true_and_false_are_still_booleans(write_plan: Callable[..., Path], registry: Registry) -> None:
    plan_dir = write_plan(
        """
        targets:
          - name: web
            kind: service
        tasks:
          - name: ping
            kind: http
            targets: [web]
            schedule: {every: 1m}
            enabled: false
            params: {verify_tls: False}
        """
    )
    loaded = load_plan(plan_dir, registry)
    assert loaded.plan.task("ping").enabled is False
    assert loaded.configs["ping"].verify_tls is False  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda root: root / "absent", "no such file or directory"),
        (lambda root: root, "no .yaml or .yml files in this directory"),
    ],
)
def test_a_missing_plan_or_an_empty_plan_directory_is_a_problem(
    tmp_path: Path, registry: Registry, make: Callable[[Path], Path], message: str
) -> None:
    [problem] = problems_of(make(tmp_path), registry)
    assert problem.message == message
    assert problem.line is None


# --- digests -------------------------------------------------------------------------------------------


_PLAN = """
runner: {concurrency: 4}
targets:
  - name: web
    kind: service
    labels: {tier: web, env: prod}
tasks:
  - name: ping
    kind: http
    targets: [web]
    schedule: {cadence: daily, window: "02:00-03:00 UTC"}
    params: {expect_status: [200], method: GET}
"""
_SAME_PLAN_REORDERED = """
tasks:
  - params: {method: GET, expect_status: [200]}
    schedule: {window: "02:00-03:00 UTC", cadence: daily}
    targets: [web]
    kind: http
    name: ping
targets:
  - labels: {env: prod, tier: web}
    kind: service
    name: web
runner: {concurrency: 4}
"""


def test_the_digest_does_not_depend_on_key_order(tmp_path: Path, registry: Registry) -> None:
    (tmp_path / "a.yaml").write_text(_PLAN)
    (tmp_path / "b.yaml").write_text(_SAME_PLAN_REORDERED)
    first, second = load_plan(tmp_path / "a.yaml", registry), load_plan(tmp_path / "b.yaml", registry)
    assert first.digest == second.digest
    assert re.fullmatch(r"[0-9a-f]{64}", first.digest)


def test_the_digest_is_the_same_on_every_load(tmp_path: Path, registry: Registry) -> None:
    (tmp_path / "a.yaml").write_text(_PLAN)
    assert load_plan(tmp_path / "a.yaml", registry).digest == load_plan(tmp_path / "a.yaml", registry).digest


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("concurrency: 4", "concurrency: 5"),
        ("02:00-03:00 UTC", "02:00-04:00 UTC"),
        ("env: prod", "env: staging"),
        ("expect_status: [200]", "expect_status: [204]"),
    ],
)
def test_the_digest_changes_when_the_plan_does(
    tmp_path: Path, registry: Registry, old: str, new: str
) -> None:
    (tmp_path / "a.yaml").write_text(_PLAN)
    (tmp_path / "b.yaml").write_text(_PLAN.replace(old, new))
    assert load_plan(tmp_path / "a.yaml", registry).digest != load_plan(tmp_path / "b.yaml", registry).digest


def test_the_digest_does_not_depend_on_how_the_plan_is_split_into_files(
    tmp_path: Path, registry: Registry
) -> None:
    (tmp_path / "whole.yaml").write_text(_PLAN)
    split = tmp_path / "split"
    split.mkdir()
    head, tasks = _PLAN.split("tasks:")
    (split / "1-targets.yaml").write_text(head)
    (split / "2-tasks.yaml").write_text("tasks:" + tasks)
    assert load_plan(split, registry).digest == load_plan(tmp_path / "whole.yaml", registry).digest


# --- plan directories -----------------------------------------------------------------------------------


def test_a_plan_directory_merges_targets_and_tasks_across_files_in_name_order(
    write_plan: Callable[..., Path], registry: Registry
) -> None:
    write_plan(
        """
        targets:
          - {name: web, kind: service}
        tasks:
          - {name: web-ping, kind: http, targets: [web, db], schedule: {every: 1m}}
        """,
        "10-web.yaml",
    )
    write_plan(
        """
        targets:
          - {name: db, kind: database}
          - {name: db-disk, kind: host}
        tasks:
          - {name: db-space, kind: disk, targets: [db-disk], schedule: {every: 5m}}
        """,
        "20-db.yaml",
    )
    plan_dir = write_plan("runner: {concurrency: 2}\n", "00-runner.yml")
    loaded = load_plan(plan_dir, registry)
    assert [t.name for t in loaded.plan.targets] == ["web", "db", "db-disk"]
    assert [t.name for t in loaded.plan.tasks] == ["web-ping", "db-space"]
    assert loaded.plan.runner.concurrency == 2
    assert [Path(f).name for f in loaded.files] == ["00-runner.yml", "10-web.yaml", "20-db.yaml"]
    # A task in one file may name a target defined in another.
    assert [t.name for t in loaded.plan.targets_of(loaded.plan.task("web-ping"))] == ["web", "db"]


def test_a_plan_directory_reports_each_problem_in_its_own_file_and_line(
    write_plan: Callable[..., Path], registry: Registry
) -> None:
    write_plan(
        """
        targets:
          - name: web
            kind: service
        """,
        "a.yaml",
    )
    plan_dir = write_plan(
        """
        # the second file
        tasks:
          - name: ping
            kind: http
            targets: [web]
            schedule: {every: 1m}
          - name: ping
            kind: http
            targets: [web]
            schedule: {every: 1m}
            retries: {attempts: 0}
        """,
        "b.yaml",
    )
    problems = problems_of(plan_dir, registry)
    assert [(Path(p.file).name, p.line, p.field) for p in problems] == [
        ("b.yaml", 11, "tasks[1].retries.attempts"),
    ]


def test_a_list_index_in_a_problem_counts_in_the_file_the_line_is_in(
    write_plan: Callable[..., Path], registry: Registry
) -> None:
    write_plan(
        """
        targets:
          - {name: web, kind: service}
        tasks:
          - {name: ping, kind: http, targets: [web], schedule: {every: 1m}}
        """,
        "a.yaml",
    )
    plan_dir = write_plan(
        """
        tasks:
          - name: ping
            kind: http
            targets: [web]
            schedule: {every: 1m}
        """,
        "b.yaml",
    )
    [problem] = problems_of(plan_dir, registry)
    assert (Path(problem.file).name, problem.line, problem.field) == ("b.yaml", 2, "tasks[0].name")
    assert problem.message == "task 'ping' is defined twice"


def test_the_same_setting_repeated_in_two_files_is_not_a_conflict(
    write_plan: Callable[..., Path], registry: Registry
) -> None:
    write_plan("runner: {concurrency: 8}\ntargets: [{name: web, kind: service}]\n", "a.yaml")
    plan_dir = write_plan("runner: {concurrency: 8}\n", "b.yaml")
    assert load_plan(plan_dir, registry).plan.runner.concurrency == 8


def test_a_plan_file_may_be_empty(write_plan: Callable[..., Path], registry: Registry) -> None:
    write_plan("targets: [{name: web, kind: service}]\n", "a.yaml")
    plan_dir = write_plan("# nothing here yet\n", "b.yaml")
    assert [t.name for t in load_plan(plan_dir, registry).plan.targets] == ["web"]


# --- JSON schema ---------------------------------------------------------------------------------------

# The JSON Schema 2020-12 keywords a plan schema may use, and where subschemas sit.
_KEYWORDS = {
    "$schema", "$id", "$ref", "$defs", "$comment", "title", "description", "default", "examples",
    "deprecated", "readOnly", "writeOnly", "type", "enum", "const", "format", "pattern", "minLength",
    "maxLength", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf", "items",
    "prefixItems", "minItems", "maxItems", "uniqueItems", "contains", "properties", "patternProperties",
    "additionalProperties", "propertyNames", "required", "minProperties", "maxProperties", "allOf",
    "anyOf", "oneOf", "not", "if", "then", "else", "dependentRequired", "dependentSchemas",
}  # fmt: skip
_TYPES = {"null", "boolean", "object", "array", "number", "string", "integer"}
_ONE_SCHEMA = ("items", "additionalProperties", "propertyNames", "contains", "not", "if", "then", "else")
_SCHEMA_MAPS = ("properties", "patternProperties", "$defs", "dependentSchemas")
_SCHEMA_LISTS = ("allOf", "anyOf", "oneOf", "prefixItems")


def subschemas(schema: Any, where: str = "#") -> Iterator[tuple[str, Any]]:
    yield where, schema
    if not isinstance(schema, dict):
        return
    for key in _ONE_SCHEMA:
        if key in schema:
            yield from subschemas(schema[key], f"{where}/{key}")
    for key in _SCHEMA_MAPS:
        for name, sub in schema.get(key, {}).items():
            yield from subschemas(sub, f"{where}/{key}/{name}")
    for key in _SCHEMA_LISTS:
        for i, sub in enumerate(schema.get(key, [])):
            yield from subschemas(sub, f"{where}/{key}/{i}")


def resolve(root: dict[str, Any], ref: str) -> Any:
    assert ref.startswith("#/"), ref
    node: Any = root
    for part in ref[2:].split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    return json_schema(Registry.default())


def test_the_plan_schema_is_json(schema: dict[str, Any]) -> None:
    assert json.loads(json.dumps(schema)) == schema
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["type"] == "object"
    assert set(schema["properties"]) == {
        "version",
        "runner",
        "incidents",
        "targets",
        "tasks",
        "people",
        "schedules",
        "escalation_policies",
        "channels",
        "postmortems",
        "playbooks",  # remediation (maintd.remediation)
        "changes",  # change management (maintd.changes)
        "components",  # lifecycle (maintd.lifecycle): inventory, documentation registry, training matrix
        "documents",
        "trainings",
        "slos",  # service level objectives (maintd.slo)
        "reviews",  # recurring reviews, the quarterly architecture review (maintd.reviews)
        "costs",  # the monthly audit and the ROI KPI (maintd.reports)
        "compliance",
    }


def test_every_part_of_the_plan_schema_is_a_well_formed_schema(schema: dict[str, Any]) -> None:
    for where, sub in subschemas(schema):
        assert isinstance(sub, dict | bool), where
        if isinstance(sub, bool):
            continue
        assert set(sub) <= _KEYWORDS, f"{where}: unknown keywords {set(sub) - _KEYWORDS}"
        if "type" in sub:
            types = sub["type"] if isinstance(sub["type"], list) else [sub["type"]]
            assert set(types) <= _TYPES, where
        if "required" in sub:
            assert isinstance(sub["required"], list), where
            assert set(sub["required"]) <= set(sub.get("properties", {})), where
        if "enum" in sub:
            assert isinstance(sub["enum"], list) and sub["enum"], where
        if "pattern" in sub:
            re.compile(sub["pattern"])


def test_every_reference_in_the_plan_schema_resolves(schema: dict[str, Any]) -> None:
    refs = [
        (where, sub["$ref"]) for where, sub in subschemas(schema) if isinstance(sub, dict) and "$ref" in sub
    ]
    assert refs
    for where, ref in refs:
        target = resolve(schema, ref)
        assert isinstance(target, dict), f"{where}: {ref}"


def test_the_plan_schema_lists_every_task_kind(schema: dict[str, Any], registry: Registry) -> None:
    task = schema["$defs"]["Task"]
    assert task["properties"]["kind"]["enum"] == registry.names()
    assert {"command", "disk", "http"} <= set(registry.names())
    rules = {rule["if"]["properties"]["kind"]["const"]: rule["then"] for rule in task["allOf"]}
    assert sorted(rules) == registry.names()
    for kind in registry:
        params = resolve(schema, rules[kind.name]["properties"]["params"]["$ref"])
        assert set(params["properties"]) == set(kind.config.model_fields)


def test_the_plan_schema_carries_each_kinds_own_rules(schema: dict[str, Any]) -> None:
    defs = schema["$defs"]
    assert defs["params.command"]["required"] == ["argv"]
    assert defs["params.command"]["additionalProperties"] is False
    assert defs["params.disk"]["properties"]["warn_percent"]["maximum"] == 100
    assert "url" in defs["params.http"]["properties"]
