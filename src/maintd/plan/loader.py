"""Plan files → a validated Plan, or every problem with file:line and field.

A plan is one YAML file or a directory of them (read recursively, in name
order). Lists (``targets``, ``tasks``) are concatenated across files; any other
top-level key may appear in one file only.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml
from pydantic import BaseModel, ValidationError

from maintd.plan.base import shared
from maintd.plan.escalation import EscalationPolicy
from maintd.plan.fields import describe_error
from maintd.plan.models import Plan, Target, Task
from maintd.plan.notify import Channel, NotifyRule, secret_urls
from maintd.plan.oncall import OnCallSchedule, Person, reference_problems
from maintd.plan.references import escalation_problems
from maintd.plan.types import SecretRef

if TYPE_CHECKING:
    from maintd.registry import Registry

LIST_KEYS = ("targets", "tasks", "people", "schedules", "escalation_policies", "channels")
# Any fixed instant works: it only proves a schedule can produce a due time at all.
_REFERENCE_TIME = datetime(2026, 1, 1, tzinfo=UTC)
MAX_FILE_BYTES = 4 << 20

Path_ = tuple[str | int, ...]


class _Loader(yaml.SafeLoader):
    """SafeLoader with YAML 1.2 booleans (only true/false): in YAML 1.1 ``on``, ``off``,
    ``yes`` and ``no`` are booleans too, so the key of ``retries: {on: [critical]}``
    became True and a label ``env: no`` became False."""


_BOOL = "tag:yaml.org,2002:bool"
_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != _BOOL]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(_BOOL, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF"))


@dataclass(frozen=True)
class Problem:
    file: str
    line: int | None
    field: str
    message: str
    severity: str = "error"

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        subject = f"{self.field}: " if self.field else ""
        return f"{where}: {self.severity}: {subject}{self.message}"


class PlanError(Exception):
    """The plan is not valid; ``problems`` says every reason, each with its place."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("\n".join(map(str, problems)))


@dataclass
class LoadedPlan:
    plan: Plan
    configs: dict[str, BaseModel]  # task name → the kind's validated params
    digest: str
    files: list[str]
    warnings: list[Problem] = field(default_factory=list)

    @property
    def document(self) -> dict[str, Any]:
        return self.plan.model_dump(mode="json")


@dataclass
class _Source:
    file: str
    data: dict[str, Any]
    marks: dict[Path_, int]


def load_plan(path: str | Path, registry: Registry) -> LoadedPlan:
    """Read, merge and validate; raise PlanError listing every problem found."""
    root = Path(path)
    files = _plan_files(root)
    problems: list[Problem] = []
    sources = [s for s in (_read(f, problems) for f in files) if s is not None]
    if problems:
        raise PlanError(problems)
    merged, origins = _merge(sources, problems)
    if problems:
        raise PlanError(problems)
    locate = _Locator(sources, origins)
    plan, indices = _validate(merged, locate, problems)
    configs = _kind_configs(merged, registry, locate, problems)
    references: list[Problem] = []
    warnings = _cross_check(plan, indices, merged, locate, references)
    echoes = _echoes(merged, indices)
    problems += [p for p in references if p.message not in echoes]
    if problems:
        raise PlanError(problems)
    return LoadedPlan(plan, configs, _digest(plan), [str(f) for f in files], warnings)


def _validate(
    merged: dict[str, Any], locate: _Locator, problems: list[Problem]
) -> tuple[Plan, dict[str, list[int]]]:
    """Validate item by item, so one bad task does not hide the problems of the next.

    Also returns, per list, the merged index of each valid item.
    """
    items: dict[str, list[Any]] = {}
    indices: dict[str, list[int]] = {}
    models: tuple[tuple[str, type[BaseModel]], ...] = (
        ("targets", Target),
        ("tasks", Task),
        ("people", Person),
        ("schedules", OnCallSchedule),
        ("escalation_policies", EscalationPolicy),
        ("channels", Channel),
    )
    for key, model in models:
        items[key], indices[key] = [], []
        for i, raw in enumerate(merged.get(key, [])):
            try:
                items[key].append(model.model_validate(raw))
                indices[key].append(i)
            except ValidationError as exc:
                for err in exc.errors():
                    loc = (key, i, *err["loc"])
                    problems.append(locate.problem(loc, describe_error(model, err)))
    rest = {k: v for k, v in merged.items() if k not in LIST_KEYS}
    try:
        plan = Plan.model_validate(rest).model_copy(update=items)
    except ValidationError as exc:
        problems.extend(locate.problem(e["loc"], describe_error(Plan, e)) for e in exc.errors())
        plan = Plan().model_copy(update=items)
    return plan, indices


# The word each list's references use for its items ("unknown person 'ann'").
_NOUNS = {
    "targets": "target",
    "tasks": "task",
    "people": "person",
    "schedules": "schedule",
    "channels": "channel",
    "escalation_policies": "escalation policy",
}


def _echoes(merged: dict[str, Any], indices: dict[str, list[int]]) -> set[str]:
    """The "unknown task 'x'" messages to drop: the plan declares x but refused it. x's own
    problems are reported; calling it unknown too would send the reader looking for a typo."""
    echoes: set[str] = set()
    for key, noun in _NOUNS.items():
        valid = set(indices[key])
        for i, raw in enumerate(merged.get(key, [])):
            if i not in valid and isinstance(raw, dict) and isinstance(raw.get("name"), str):
                echoes.add(f"unknown {noun} {raw['name']!r}")
    return echoes


def _plan_files(root: Path) -> list[Path]:
    if root.is_dir():
        files = sorted(p for p in root.rglob("*") if p.suffix in (".yaml", ".yml") and p.is_file())
        if not files:
            raise PlanError([Problem(str(root), None, "", "no .yaml or .yml files in this directory")])
        return files
    if not root.exists():
        raise PlanError([Problem(str(root), None, "", "no such file or directory")])
    return [root]


def _read(path: Path, problems: list[Problem]) -> _Source | None:
    name = str(path)
    try:
        if path.stat().st_size > MAX_FILE_BYTES:
            problems.append(Problem(name, None, "", f"larger than {MAX_FILE_BYTES >> 20} MiB"))
            return None
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        problems.append(Problem(name, None, "", f"cannot read: {exc}"))
        return None
    try:
        nodes = list(yaml.compose_all(text, Loader=_Loader))
        if len(nodes) > 1:
            starts = [
                e.start_mark.line + 1
                for e in yaml.parse(text, Loader=_Loader)
                if isinstance(e, yaml.DocumentStartEvent) and e.start_mark
            ]
            problems.append(Problem(name, starts[1], "", "one YAML document per file, please (found '---')"))
            return None
        data = yaml.load(text, Loader=_Loader) if nodes and nodes[0] is not None else {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        reason = getattr(exc, "problem", None) or str(exc)
        problems.append(Problem(name, line, "", f"not valid YAML: {reason}"))
        return None
    if not isinstance(data, dict):
        problems.append(
            Problem(name, 1, "", f"a plan file is a mapping of keys, not a {type(data).__name__}")
        )
        return None
    marks: dict[Path_, int] = {}
    before = len(problems)
    if nodes:  # an empty (or comments-only) file has no document at all
        _walk(nodes[0], (), marks, name, problems)
    return _Source(name, data, marks) if len(problems) == before else None


def _walk(node: yaml.Node, path: Path_, marks: dict[Path_, int], file: str, problems: list[Problem]) -> None:
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key_node, value_node in node.value:
            key = key_node.value
            if key in seen:
                problems.append(
                    Problem(file, key_node.start_mark.line + 1, _dotted((*path, key)), "duplicate key")
                )
            seen.add(key)
            marks[(*path, key)] = key_node.start_mark.line + 1
            _walk(value_node, (*path, key), marks, file, problems)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            marks[(*path, i)] = item.start_mark.line + 1
            _walk(item, (*path, i), marks, file, problems)


def _merge(sources: list[_Source], problems: list[Problem]) -> tuple[dict[str, Any], dict[Any, Any]]:
    merged: dict[str, Any] = {}
    origins: dict[Any, Any] = {}
    for src in sources:
        for key, value in src.data.items():
            if key in LIST_KEYS:
                if not isinstance(value, list):
                    problems.append(Problem(src.file, src.marks.get((key,)), key, "must be a list"))
                    continue
                items = merged.setdefault(key, [])
                for local, item in enumerate(value):
                    origins[(key, len(items))] = (src, local)
                    items.append(item)
            elif key in merged and merged[key] != value:
                first = origins[key]
                problems.append(
                    Problem(src.file, src.marks.get((key,)), str(key), f"already set in {first.file}")
                )
            else:
                merged[key] = value
                origins[key] = src
    return merged, origins


class _Locator:
    def __init__(self, sources: list[_Source], origins: dict[Any, Any]) -> None:
        self.sources = sources
        self.origins = origins

    def place(self, loc: Path_) -> tuple[str, int | None, Path_]:
        """The file, line and path within that file (a list item's index counted in its own file)."""
        if len(loc) >= 2 and (loc[0], loc[1]) in self.origins:
            src, local = self.origins[(loc[0], loc[1])]
            path: Path_ = (loc[0], local, *loc[2:])
        elif loc and loc[0] in self.origins:
            src, path = self.origins[loc[0]], loc
        else:
            src = self.sources[0] if self.sources else _Source("<plan>", {}, {})
            path = loc
        for end in range(len(path), 0, -1):
            line = src.marks.get(path[:end])
            if line is not None:
                return src.file, line, path
        return src.file, None, path

    def problem(self, loc: Path_, message: str, severity: str = "error") -> Problem:
        file, line, path = self.place(loc)
        return Problem(file, line, _dotted(path), message, severity)


def _dotted(loc: Path_) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _kind_configs(
    raw: dict[str, Any], registry: Registry, locate: _Locator, problems: list[Problem]
) -> dict[str, BaseModel]:
    """Validate each task's params with its kind's model (from the raw data, so a task
    with other problems still gets its params checked)."""
    configs: dict[str, BaseModel] = {}
    for i, task in enumerate(raw.get("tasks", [])):
        if not isinstance(task, dict) or not isinstance(task.get("kind"), str):
            continue
        try:
            kind = registry.get(task["kind"])
        except LookupError as exc:  # maintd.registry.UnknownKind
            problems.append(locate.problem(("tasks", i, "kind"), str(exc)))
            continue
        params = task.get("params") or {}
        if not isinstance(params, dict):
            continue  # the Task model reports it
        try:
            config = kind.config.model_validate(params)
        except ValidationError as exc:
            for err in exc.errors():
                loc = ("tasks", i, "params", *err["loc"])
                problems.append(locate.problem(loc, describe_error(kind.config, err)))
            continue
        configs[str(task.get("name"))] = config = shared(config)  # tasks with equal params: one config
        for key, ref in _secret_refs(config):
            if (why := ref.problem()) is not None:
                problems.append(locate.problem(("tasks", i, "params", *key), why))
    return configs


def _secret_refs(value: Any, path: Path_ = ()) -> list[tuple[Path_, SecretRef]]:
    if isinstance(value, SecretRef):
        return [(path, value)]
    if isinstance(value, BaseModel):
        return [r for k in type(value).model_fields for r in _secret_refs(getattr(value, k), (*path, k))]
    if isinstance(value, dict):
        return [r for k, v in value.items() for r in _secret_refs(v, (*path, k))]
    if isinstance(value, list):
        return [r for i, v in enumerate(value) for r in _secret_refs(v, (*path, i))]
    return []


def _cross_check(
    plan: Plan, indices: dict[str, list[int]], raw: dict[str, Any], locate: _Locator, problems: list[Problem]
) -> list[Problem]:
    """Names that must be unique or must exist; schedules that can never fire."""
    warnings: list[Problem] = []
    targets: set[str] = set()
    for i, target in zip(indices["targets"], plan.targets, strict=True):
        if target.name in targets:
            problems.append(
                locate.problem(("targets", i, "name"), f"target {target.name!r} is defined twice")
            )
        targets.add(target.name)
        for key, ref in target.secrets.items():
            if (why := ref.problem()) is not None:
                problems.append(locate.problem(("targets", i, "secrets", key), why))
    tasks: set[str] = set()
    for i, task in zip(indices["tasks"], plan.tasks, strict=True):
        if task.name in tasks:
            problems.append(locate.problem(("tasks", i, "name"), f"task {task.name!r} is defined twice"))
        tasks.add(task.name)
        names_at: Path_ = ("tasks", i, "targets")
        if not isinstance(raw["tasks"][i].get("targets"), list):
            names_at = (*names_at, "names")
        for j, name in enumerate(task.targets.names):
            if name not in targets:
                problems.append(locate.problem((*names_at, j), f"unknown target {name!r}"))
        if task.targets.labels and not plan.targets_of(task):
            warnings.append(
                locate.problem(("tasks", i, "targets", "labels"), "no target has these labels", "warning")
            )
        try:
            task.schedule.timing().next_due(_REFERENCE_TIME)
        except ValueError as exc:
            problems.append(locate.problem(("tasks", i, "schedule"), str(exc)))
    _check_oncall(plan, indices, locate, problems)
    return warnings


def _check_oncall(
    plan: Plan, indices: dict[str, list[int]], locate: _Locator, problems: list[Problem]
) -> None:
    """People named in schedules and policies exist; notification secrets resolve."""
    found = [*reference_problems(plan.people, plan.schedules), *escalation_problems(plan)]
    for (key, *rest), message in found:
        if key in indices:
            position, *rest = rest
            problems.append(locate.problem((key, indices[str(key)][int(position)], *rest), message))
        else:
            problems.append(locate.problem((key, *rest), message))
    for i, person in zip(indices["people"], plan.people, strict=True):
        for j, ref in secret_urls(person.notify):
            if (why := ref.problem()) is not None:
                problems.append(locate.problem(("people", i, "notify", j), why))
    for i, channel in zip(indices["channels"], plan.channels, strict=True):
        for _, ref in secret_urls([NotifyRule(url=channel.url)]):
            if (why := ref.problem()) is not None:
                problems.append(locate.problem(("channels", i, "url"), why))


def plan_from_document(
    document: dict[str, Any], registry: Registry, source: str = "<stored plan>"
) -> LoadedPlan:
    """A plan stored by an earlier load (the database copy), validated again."""
    plan = Plan.model_validate(document)
    configs = {
        task.name: shared(registry.get(task.kind).config.model_validate(task.params)) for task in plan.tasks
    }
    return LoadedPlan(plan, configs, _digest(plan), [source])


def _digest(plan: Plan) -> str:
    return hashlib.sha256(json.dumps(plan.model_dump(mode="json"), sort_keys=True).encode()).hexdigest()
