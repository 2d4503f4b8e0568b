"""Remediation playbooks: an alert type (label matchers) → an action, with guardrails and verification.

::

    playbooks:
      - name: api-crashloop
        alert_type: pod_crash            # matches alertname=pod_crash; action defaults to restart_pod
        action: {params: {namespace: "${namespace}", pod: "${pod}"}}
        guardrails: {cooldown: 15m, max_executions: 3, window: 1h, approval: auto}

``${label}`` in an action's string params is replaced by the alert's label of that name; an
alert without the label is refused (a missing value never widens what an action touches).
Each action kind validates its own params (``maintd.remediation``); this module only knows
the shape of a playbook.
"""

from __future__ import annotations

from datetime import timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Self

from pydantic import Field, field_validator, model_validator

from maintd.plan.base import StrictModel
from maintd.plan.incidents import Matcher, parse_matchers
from maintd.plan.oncall import Loc, Name
from maintd.plan.types import Duration

if TYPE_CHECKING:
    from maintd.plan.models import Plan

# The seed's REMEDIATION_ACTIONS: alert type → the action kind a playbook for it runs by default.
SEED_ACTIONS = {
    "pod_crash": "restart_pod",
    "high_memory": "memory_hook",
    "disk_full": "clean_temp_files",
    "connection_pool_exhausted": "reset_connections",
    "api_rate_limit": "circuit_breaker",
    "certificate_expired": "renew_certificate",
    "node_pressure": "cordon_and_drain",
}


class Approval(StrEnum):
    auto = "auto"  # destructive actions wait for a responder; the others run
    always = "always"
    never = "never"


class Guardrails(StrictModel):
    """Limits a playbook runs under; every refusal is an event saying which one and why."""

    cooldown: Duration = Field(
        default=timedelta(minutes=15),
        description="after an execution on a target, further alerts on that target are suppressed this long",
    )
    max_executions: int = Field(
        default=3, ge=1, le=1000, description="at most this many executions of the playbook per window"
    )
    window: Duration = Field(default=timedelta(hours=1), description="the window of max_executions")
    max_targets: int = Field(
        default=1,
        ge=1,
        le=1000,
        description="blast radius: at most this many objects (pods, sessions, directories, nodes) per "
        "execution; more is refused, never cut down",
    )
    max_unhealthy: int = Field(
        default=5,
        ge=1,
        le=10_000,
        description="skip when more targets than this have firing alerts this playbook matches: a wider "
        "problem than one target's",
    )
    dry_run: bool = Field(default=False, description="record what would run, change nothing")
    approval: Approval = Field(
        default=Approval.auto,
        description="auto: destructive actions wait for a responder's approval; always; never",
    )
    breaker_failures: int = Field(
        default=3, ge=1, le=100, description="this many failed executions in a row disable the playbook"
    )
    timeout: Duration = Field(default=timedelta(minutes=5), description="an execution's time limit")

    @field_validator("window", "timeout")
    @classmethod
    def _positive(cls, value: timedelta) -> timedelta:
        if value <= timedelta(0):
            raise ValueError("must be longer than 0s")
        return value


class Verify(StrictModel):
    """After acting, re-run the check that failed: by default the alert's ``task`` on its ``target``."""

    enabled: bool = Field(default=True, description="re-run the failing check after acting")
    task: str | None = Field(default=None, description="the task to re-run; default: the alert's task label")
    target: str | None = Field(
        default=None, description="the target to re-run it on; default: the alert's target label"
    )
    delay: Duration = Field(default=timedelta(0), description="wait this long after acting before re-running")


class PlaybookAction(StrictModel):
    kind: str | None = Field(
        default=None, description="the action kind; default: the seed's action for alert_type"
    )
    params: dict[str, Any] = Field(default={}, description="validated by the action kind's own model")


class Playbook(StrictModel):
    name: Name
    description: str = ""
    enabled: bool = True
    alert_type: str | None = Field(
        default=None,
        description="the seed's alert type (pod_crash, ...): matches alertname=<it> unless match is given, "
        "and picks the seed's action",
    )
    match: list[Matcher] = Field(default=[], description="label matchers; all must hold")
    action: PlaybookAction = Field(default=PlaybookAction(), description="what to run")
    target: str | None = Field(
        default=None,
        description="the target key of cooldowns and one-at-a-time, from labels ('${namespace}/${pod}'); "
        "default: the alert's target label, else its fingerprint",
    )
    guardrails: Guardrails = Guardrails()
    verify: Verify = Verify()

    @field_validator("match", mode="before")
    @classmethod
    def _matchers(cls, value: object) -> list[Matcher]:
        return parse_matchers(value)

    @model_validator(mode="after")
    def _complete(self) -> Self:
        if not self.match and self.alert_type is None:
            raise ValueError("a playbook needs match (label matchers) or alert_type; none would match all")
        if self.action.kind is None and self.alert_type not in SEED_ACTIONS:
            known = ", ".join(SEED_ACTIONS)
            raise ValueError(f"name action.kind, or an alert_type with a seed action ({known})")
        return self

    @property
    def matchers(self) -> list[Matcher]:
        if self.match:
            return self.match
        return [Matcher(name="alertname", value=str(self.alert_type))]

    @property
    def action_kind(self) -> str:
        return self.action.kind or SEED_ACTIONS[str(self.alert_type)]

    def matches(self, labels: dict[str, str]) -> bool:
        return self.enabled and all(m.matches(labels) for m in self.matchers)


def playbook_problems(plan: Plan) -> list[tuple[Loc, str]]:
    """Playbooks: unique names, known action kinds, valid params, tasks and targets that exist."""
    # The remediation room comes after the plan's; imported here, when a plan is checked.
    from pydantic import ValidationError

    from maintd.plan.fields import describe_error
    from maintd.remediation.base import placeholders_filled
    from maintd.remediation.registry import UnknownAction, builtin

    problems: list[tuple[Loc, str]] = []
    seen: set[str] = set()
    for i, playbook in enumerate(plan.playbooks):
        if playbook.name in seen:
            problems.append((("playbooks", i, "name"), f"playbook {playbook.name!r} is defined twice"))
        seen.add(playbook.name)
    tasks = {t.name: t for t in plan.tasks}
    targets = {t.name for t in plan.targets}
    for i, playbook in enumerate(plan.playbooks):
        at: Loc = ("playbooks", i)
        try:
            kind = builtin().get(playbook.action_kind)
        except UnknownAction as exc:
            problems.append(((*at, "action", "kind"), str(exc)))
            continue
        try:
            config = kind.config.model_validate(placeholders_filled(playbook.action.params))
        except ValidationError as exc:
            for err in exc.errors():
                problems.append(((*at, "action", "params", *err["loc"]), describe_error(kind.config, err)))
            continue
        for key in ("task", "target", "cluster_target"):
            name, raw = getattr(config, key, None), playbook.action.params.get(key)
            if not isinstance(name, str) or not isinstance(raw, str) or "${" in raw:
                continue  # not given, or filled in from the alert's labels
            if key == "task" and name not in tasks:
                problems.append(((*at, "action", "params", key), f"unknown task {name!r}"))
            elif key == "task" and tasks[name].kind != "certificates" and kind.name == "renew_certificate":
                problems.append(
                    ((*at, "action", "params", key), f"task {name!r} is not of kind certificates")
                )
            elif key != "task" and name not in targets:
                problems.append(((*at, "action", "params", key), f"unknown target {name!r}"))
        if playbook.verify.task is not None and playbook.verify.task not in tasks:
            problems.append(((*at, "verify", "task"), f"unknown task {playbook.verify.task!r}"))
        if playbook.verify.target is not None and playbook.verify.target not in targets:
            problems.append(((*at, "verify", "target"), f"unknown target {playbook.verify.target!r}"))
    return problems
