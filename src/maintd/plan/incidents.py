"""Plan settings for alerts and incidents: priorities, response deadlines, grouping, alerting from runs."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Self

from pydantic import Field, field_validator, model_validator

from maintd.plan.base import StrictModel
from maintd.plan.types import Duration
from maintd.plan.windows import parse_window


class Priority(StrEnum):
    """The seed's incident classes."""

    P0 = "P0"  # critical: complete outage (all MCP servers down, data loss)
    P1 = "P1"  # major: significant degradation (50% capacity loss, auth failure)
    P2 = "P2"  # moderate: limited impact (a single service degraded)
    P3 = "P3"  # minor: minimal impact (a non-critical feature)

    @property
    def rank(self) -> int:
        """Higher is more urgent."""
        return 3 - int(self.value[1])


# The seed's response times: how long until an incident must be acknowledged.
SEED_DEADLINES = {
    Priority.P0: timedelta(minutes=15),
    Priority.P1: timedelta(minutes=30),
    Priority.P2: timedelta(hours=2),
    Priority.P3: timedelta(hours=24),
}

_MATCHER = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)\s*\"?(.*?)\"?\s*$")


class Matcher(StrictModel):
    """A label matcher as in Alertmanager: ``name=value``, ``!=``, ``=~`` (regex), ``!~``."""

    name: str
    op: str = Field(default="=", pattern=r"^(=|!=|=~|!~)$")
    value: str

    @classmethod
    def parse(cls, text: str) -> Matcher:
        match = _MATCHER.match(text)
        if not match:
            raise ValueError(
                f"{text!r} is not a matcher: write name=value, name!=value, name=~regex or name!~regex"
            )
        name, op, value = match.groups()
        matcher = cls(name=name, op=op, value=value)
        matcher.check()
        return matcher

    def check(self) -> None:
        if self.op in ("=~", "!~"):
            try:
                re.compile(self.value)
            except re.error as exc:
                raise ValueError(f"matcher {self}: bad regular expression: {exc}") from None

    def matches(self, labels: dict[str, str]) -> bool:
        actual = labels.get(self.name, "")
        if self.op == "=":
            return actual == self.value
        if self.op == "!=":
            return actual != self.value
        # Anchored, as in Alertmanager.
        found = re.fullmatch(self.value, actual) is not None
        return found if self.op == "=~" else not found

    def __str__(self) -> str:
        return f"{self.name}{self.op}{self.value}"


def parse_matchers(value: object) -> list[Matcher]:
    """``{name: value}`` (equality), or a list of ``"name=~value"`` strings or matcher objects."""
    if isinstance(value, dict) and "name" not in value:
        return [Matcher(name=str(k), value=str(v)) for k, v in value.items()]
    if isinstance(value, list):
        out = []
        for item in value:
            out.append(Matcher.parse(item) if isinstance(item, str) else Matcher.model_validate(item))
        return out
    raise ValueError("matchers are a mapping {label: value} or a list like ['severity=~critical|error']")


class PriorityRule(StrictModel):
    """Alerts whose labels match all of ``match`` get ``priority``; the first matching rule wins."""

    match: list[Matcher]
    priority: Priority
    escalation_policy: str | None = Field(
        default=None, description="the policy for incidents this rule opens; default: the plan's"
    )

    @field_validator("match", mode="before")
    @classmethod
    def _matchers(cls, value: object) -> list[Matcher]:
        return parse_matchers(value)


class InhibitRule(StrictModel):
    """While an alert matching ``source`` fires, new alerts matching ``target`` with the same
    values of the ``equal`` labels are muted (Alertmanager's inhibit_rules)."""

    source: list[Matcher]
    target: list[Matcher]
    equal: list[str] = Field(default=[], description="labels whose values must be equal in both")

    @field_validator("source", "target", mode="before")
    @classmethod
    def _matchers(cls, value: object) -> list[Matcher]:
        matchers = parse_matchers(value)
        if not matchers:  # Alertmanager would match every alert: here that is surely a mistake
            raise ValueError("an inhibit rule needs at least one matcher on each side")
        return matchers


class MaintenanceWindow(StrictModel):
    """Alerts matching ``match`` are muted while the window is open: a recurring ``window`` in the
    task window grammar, or a one-off ``start``/``end``."""

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_.-]{0,62}$")
    match: list[Matcher] = Field(description="which alerts it mutes; an empty list is refused")
    window: str | None = Field(default=None, description="e.g. 'first Sunday 05:00-08:00 UTC'")
    start: datetime | None = None
    end: datetime | None = None
    comment: str = ""

    @field_validator("match", mode="before")
    @classmethod
    def _matchers(cls, value: object) -> list[Matcher]:
        matchers = parse_matchers(value)
        if not matchers:
            raise ValueError("a maintenance window must say which alerts it mutes")
        return matchers

    @field_validator("window")
    @classmethod
    def _window(cls, value: str | None) -> str | None:
        if value is not None:
            parse_window(value)
        return value

    @model_validator(mode="after")
    def _when(self) -> Self:
        one_off = self.start is not None or self.end is not None
        if (self.window is None) == (not one_off):
            raise ValueError("give either a recurring window or a start and an end")
        if one_off:
            if self.start is None or self.end is None:
                raise ValueError("a one-off window needs both start and end")
            if self.start.tzinfo is None or self.end.tzinfo is None:
                raise ValueError("give start and end with a UTC offset, e.g. 2026-12-01T02:00:00Z")
            if self.end <= self.start:
                raise ValueError(f"the window ends at {self.end}, not after it starts at {self.start}")
        return self


class IncidentSettings(StrictModel):
    group_by: list[str] = Field(
        default=["alertname", "target"],
        description="alerts with equal values of these labels join one open incident",
    )
    rules: list[PriorityRule] = Field(default=[], description="label rules to priorities, first match wins")
    deadlines: dict[Priority, Duration] = Field(
        default=SEED_DEADLINES, description="time to acknowledge, per priority (seed: 15m, 30m, 2h, 24h)"
    )
    escalation_policy: str | None = Field(
        default=None, description="the escalation policy of new incidents; none: nobody is paged"
    )
    group_wait: Duration = Field(
        default=timedelta(0), description="wait this long after an incident opens before the first page"
    )
    inhibit: list[InhibitRule] = Field(default=[], description="alerts that mute other alerts")
    maintenance_windows: list[MaintenanceWindow] = Field(
        default=[], description="declared windows during which matching alerts are muted"
    )

    @field_validator("maintenance_windows")
    @classmethod
    def _unique_windows(cls, value: list[MaintenanceWindow]) -> list[MaintenanceWindow]:
        names = [w.name for w in value]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"window names are how alerts say what muted them; {twice} used twice")
        return value

    @model_validator(mode="after")
    def _every_priority(self) -> Self:
        missing = [p.value for p in Priority if p not in self.deadlines]
        if missing:
            raise ValueError(f"deadlines needs every priority; missing {missing}")
        return self


class TaskAlert(StrictModel):
    """Raise an alert from a task's runs: after ``after`` non-ok runs in a row on a target."""

    after: int = Field(default=1, ge=1, le=100, description="consecutive non-ok runs before the alert fires")
    on: list[str] = Field(default=["critical", "unknown"], description="statuses that count as failing")
    priority: Priority | None = Field(default=None, description="fixed priority; default: the plan's rules")
    labels: dict[str, str] = Field(default={}, description="extra labels on the alert")
    runbook: str | None = Field(default=None, description="runbook URL put on the alert")
