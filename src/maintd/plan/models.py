"""The plan: targets (what is maintained) and tasks (what is done to them, when)."""

from __future__ import annotations

import re
from datetime import timedelta
from enum import StrEnum
from typing import Annotated, Any, Self

from pydantic import BeforeValidator, Field, PrivateAttr, StringConstraints, field_validator, model_validator

from maintd.plan.base import StrictModel, shared
from maintd.plan.changes import ChangeSettings
from maintd.plan.costs import ComplianceCheck, CostModel  # the monthly audit (maintd.reports)
from maintd.plan.escalation import EscalationPolicy
from maintd.plan.executor import ExecutorSettings  # scale-out (maintd.executor)
from maintd.plan.incidents import IncidentSettings, TaskAlert
from maintd.plan.lifecycle import Component, Document, Training  # lifecycle (maintd.lifecycle)
from maintd.plan.lifecycle import Stage as Stage  # re-exported: it was defined here
from maintd.plan.notify import Channel
from maintd.plan.oncall import OnCallSchedule, Person
from maintd.plan.playbooks import Playbook
from maintd.plan.postmortems import PostmortemSettings
from maintd.plan.reviews import Review  # recurring reviews, the architecture review (maintd.reviews)
from maintd.plan.schedule import Schedule
from maintd.plan.slos import Slo  # service level objectives (maintd.slo)
from maintd.plan.types import Duration, SecretRef

Name = Annotated[
    str,
    StringConstraints(pattern=r"^[a-z0-9][a-z0-9_.-]{0,62}$"),
    Field(description="lower-case letters, digits, '-', '_' and '.', at most 63 characters"),
]
LabelValue = Annotated[str, StringConstraints(max_length=253)]


class TargetKind(StrEnum):
    service = "service"
    api = "api"
    mcp_server = "mcp_server"
    database = "database"
    cache = "cache"
    host = "host"
    cluster = "cluster"
    certificate = "certificate"
    backup_set = "backup_set"
    log_directory = "log_directory"
    directory = "directory"


class Target(StrictModel):
    name: Name
    kind: TargetKind
    description: str = ""
    labels: dict[str, LabelValue] = {}
    owner: str | None = None
    stage: Stage = Stage.production
    connection: dict[str, Any] = Field(
        default={}, description="where and how to reach it: url, host, port, path, database, ..."
    )
    secrets: dict[str, SecretRef] = Field(
        default={}, description="named secret references (env:NAME or file:/path), never values"
    )

    @field_validator("labels")
    @classmethod
    def _label_keys(cls, value: dict[str, str]) -> dict[str, str]:
        for key in value:
            if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_./-]*", key):
                raise ValueError(f"label name {key!r} must start with a letter or '_'")
        return value


class Selector(StrictModel):
    """Which targets a task runs on: by name, by labels, or both (a union).

    An empty selector selects nothing, never everything.
    """

    names: list[Name] = []
    labels: dict[str, LabelValue] = {}

    def matches(self, target: Target) -> bool:
        if target.name in self.names:
            return True
        return bool(self.labels) and all(target.labels.get(k) == v for k, v in self.labels.items())

    @model_validator(mode="after")
    def _not_empty(self) -> Self:
        if not self.names and not self.labels:
            raise ValueError("a target selector needs 'names' or 'labels'; an empty one would select nothing")
        return self


class Retry(StrictModel):
    """Re-run a failed run before the next scheduled one (Nagios' soft states)."""

    attempts: int = Field(default=1, ge=1, le=20, description="total attempts, the first included")
    backoff: Duration = timedelta(seconds=30)
    factor: float = Field(default=2.0, ge=1.0, le=10.0)
    max_backoff: Duration = timedelta(minutes=30)
    on: list[str] = Field(default=["critical", "unknown"], description="statuses that trigger a retry")

    def delay(self, attempt: int) -> timedelta:
        """Backoff before attempt ``attempt + 1``."""
        seconds = self.backoff.total_seconds() * self.factor ** (attempt - 1)
        return timedelta(seconds=min(seconds, self.max_backoff.total_seconds()))

    @field_validator("on")
    @classmethod
    def _statuses(cls, value: list[str]) -> list[str]:
        allowed = {"ok", "warning", "critical", "unknown"}
        bad = [s for s in value if s not in allowed]
        if bad:
            raise ValueError(f"retry.on takes statuses from {sorted(allowed)}, not {bad}")
        return value


def _names_to_selector(value: Any) -> Any:
    if isinstance(value, list):
        return {"names": value}
    return value


NO_RETRY = Retry()


class Task(StrictModel):
    name: Name
    kind: str = Field(description="the check or action kind, e.g. http, command, disk")
    description: str = ""
    targets: Annotated[
        Selector, BeforeValidator(_names_to_selector, json_schema_input_type=Selector | list[Name])
    ] = Field(description="target names, or a selector {names, labels}")
    schedule: Schedule
    params: dict[str, Any] = Field(default={}, description="validated by the kind's own model")
    timeout: Duration = timedelta(minutes=5)
    # One shared default (models are frozen): a default instance is otherwise deep-copied per task.
    retries: Retry = Field(default_factory=lambda: NO_RETRY)
    concurrency: int = Field(default=0, ge=0, description="runs of this task at once; 0 = no own limit")
    preventive: bool = Field(default=True, description="scheduled upkeep (true) or a reaction (false)")
    enabled: bool = True
    owner: str | None = None
    labels: dict[str, LabelValue] = {}
    alert: TaskAlert | None = Field(default=None, description="raise an alert when runs keep failing")
    mute_alerts: bool = Field(
        default=False, description="while this task runs on a target, mute new alerts about that target"
    )

    @field_validator("schedule")
    @classmethod
    def _share_schedule(cls, value: Schedule) -> Schedule:
        return shared(value)  # most tasks of a plan run on one of a few schedules

    @field_validator("timeout")
    @classmethod
    def _timeout_positive(cls, value: timedelta) -> timedelta:
        if value.total_seconds() <= 0:
            raise ValueError("timeout must be longer than 0s")
        return value


class RunnerSettings(StrictModel):
    concurrency: int = Field(default=64, ge=1, le=10_000, description="runs at once, all tasks together")
    output_limit: int = Field(default=16_384, ge=256, description="bytes of output kept per run")
    shutdown_grace: Duration = timedelta(seconds=20)
    executor: ExecutorSettings = Field(
        default=ExecutorSettings(), description="where claimed runs execute: local, or Celery workers"
    )


class TargetIndex:
    """Which targets a selector picks, by look-up instead of testing every target.

    Finds the candidates a selector can match (its names; targets carrying each of its
    labels), then keeps those ``Selector.matches`` accepts, in plan order: the same list
    as ``Plan.targets_of``. With 10,000 tasks on 10,000 targets the scan was 10^8 calls.
    """

    def __init__(self, targets: list[Target]) -> None:
        self._targets = targets
        # A name's first position; only a name given twice (an invalid plan) gets a list, so a
        # plan of 10,000 targets does not keep 10,000 one-item lists (~0.7 MB) while it runs.
        self._by_name: dict[str, int] = {}
        self._more_by_name: dict[str, list[int]] = {}
        self._by_label: dict[tuple[str, str], set[int]] = {}
        for i, target in enumerate(targets):
            if self._by_name.setdefault(target.name, i) != i:
                self._more_by_name.setdefault(target.name, []).append(i)
            for label in target.labels.items():
                self._by_label.setdefault(label, set()).add(i)

    def targets_of(self, task: Task) -> list[Target]:
        selector = task.targets
        found: set[int] = set()
        for name in selector.names:
            if (first := self._by_name.get(name)) is not None:
                found.add(first)
                found.update(self._more_by_name.get(name, ()))
        if selector.labels:
            having = sorted((self._by_label.get(label, set()) for label in selector.labels.items()), key=len)
            found.update(having[0].intersection(*having[1:]))
        return [t for t in (self._targets[i] for i in sorted(found)) if selector.matches(t)]


class Plan(StrictModel):
    _target_index: tuple[list[Target], TargetIndex] | None = PrivateAttr(default=None)

    version: int = Field(default=1, ge=1, le=1)
    runner: RunnerSettings = RunnerSettings()
    incidents: IncidentSettings = IncidentSettings()
    targets: list[Target] = []
    tasks: list[Task] = []
    people: list[Person] = Field(default=[], description="who can be on call")
    schedules: list[OnCallSchedule] = Field(default=[], description="on-call schedules: layered rotations")
    escalation_policies: list[EscalationPolicy] = Field(
        default=[], description="who is paged, in which order, after how long"
    )
    channels: list[Channel] = Field(default=[], description="named notification channels (team chats, hooks)")
    postmortems: PostmortemSettings = Field(
        default=PostmortemSettings(), description="when post-mortem action items remind their owners"
    )
    # remediation (maintd.remediation): alert type -> action, with guardrails
    playbooks: list[Playbook] = Field(
        default=[], description="remediation playbooks: alert type → action, with guardrails and verification"
    )
    changes: ChangeSettings = Field(  # change management (maintd.changes)
        default=ChangeSettings(), description="the approval matrix, procedures, health watch and freeze"
    )
    # lifecycle (maintd.lifecycle): inventory and versions, the documentation registry, the training matrix
    components: list[Component] = Field(default=[], description="components: stage, versions, owner")
    documents: list[Document] = Field(default=[], description="documents with review cadence and owner")
    trainings: list[Training] = Field(default=[], description="the training matrix: role → training")
    slos: list[Slo] = Field(default=[], description="availability objectives: error budget, burn-rate alerts")
    reviews: list[Review] = Field(
        default=[], description="recurring checklist reviews (the quarterly architecture review)"
    )
    # the monthly audit and the ROI KPI (maintd.reports, maintd.kpi.roi)
    costs: CostModel = Field(default=CostModel(), description="the cost model behind the maintenance ROI")
    compliance: list[ComplianceCheck] = Field(
        default=[], description="the monthly audit's checks: a task's latest run ok, or a KPI within bounds"
    )

    def target(self, name: str) -> Target:
        for target in self.targets:
            if target.name == name:
                return target
        raise KeyError(name)

    def task(self, name: str) -> Task:
        for task in self.tasks:
            if task.name == name:
                return task
        raise KeyError(name)

    def targets_of(self, task: Task) -> list[Target]:
        """The targets ``task`` selects, in plan order."""
        cached = self._target_index
        # Keyed by the list's identity: model_copy(update={"targets": ...}) must not reuse it.
        if cached is None or cached[0] is not self.targets:
            cached = self._target_index = (self.targets, TargetIndex(self.targets))
        return cached[1].targets_of(task)
