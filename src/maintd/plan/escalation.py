"""Escalation policies: ordered levels of whom to page, after how long, repeated if nobody answers.

The seed's matrix as a policy::

    escalation_policies:
      - name: platform
        levels:
          - after: 0m                      # L1: primary and secondary on call
            notify: [{schedule: platform, layer: primary}, {schedule: platform, layer: secondary}]
          - after: 15m                     # L2: team lead, platform manager
            notify: [{role: team-lead}, {role: platform-manager}]
          - after: 30m                     # L3: director, VP
            notify: [{role: director}]
        repeat: 1

``after`` counts from when the incident opened (plus the plan's ``group_wait``). An
incident keeps the policy as it was when it opened, whatever later plans say.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Self

from pydantic import Field, field_validator, model_validator

from maintd.plan.base import StrictModel
from maintd.plan.oncall import Name
from maintd.plan.types import Duration


class EscalationTarget(StrictModel):
    """Exactly one of: a schedule (one layer, or every layer), a person, a role, a channel."""

    schedule: Name | None = None
    layer: Name | None = Field(default=None, description="with schedule: only this layer; none: every layer")
    person: Name | None = None
    role: Name | None = Field(default=None, description="every person with this role")
    channel: Name | None = Field(default=None, description="a channel from the plan's channels")

    @model_validator(mode="after")
    def _exactly_one(self) -> Self:
        given = [k for k in ("schedule", "person", "role", "channel") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("name exactly one of schedule, person, role or channel")
        if self.layer is not None and self.schedule is None:
            raise ValueError("layer goes with schedule")
        return self

    def __str__(self) -> str:
        if self.schedule is not None:
            return f"schedule:{self.schedule}" + (f"/{self.layer}" if self.layer else "")
        for key in ("person", "role", "channel"):
            if (value := getattr(self, key)) is not None:
                return f"{key}:{value}"
        return "?"  # unreachable: validated


class EscalationLevel(StrictModel):
    after: Duration = Field(default=timedelta(0), description="since the incident opened (per cycle)")
    notify: list[EscalationTarget] = Field(description="who is paged at this level")

    @field_validator("notify")
    @classmethod
    def _someone(cls, value: list[EscalationTarget]) -> list[EscalationTarget]:
        if not value:
            raise ValueError("a level needs at least one target to notify")
        return value


class EscalationPolicy(StrictModel):
    name: Name
    description: str = ""
    levels: list[EscalationLevel]
    repeat: int = Field(default=0, ge=0, le=10, description="times to go through the levels again")
    repeat_after: Duration = Field(
        default=timedelta(minutes=30),
        description="pause between the last level and the first level of the next cycle",
    )

    @field_validator("levels")
    @classmethod
    def _ordered(cls, value: list[EscalationLevel]) -> list[EscalationLevel]:
        if not value:
            raise ValueError("a policy needs at least one level")
        for i in range(1, len(value)):
            if value[i].after < value[i - 1].after:
                raise ValueError(f"level {i + 1} comes before level {i}: 'after' must not decrease")
        return value

    @property
    def cycle(self) -> timedelta:
        """How long one pass through the levels takes, pause included."""
        return self.levels[-1].after + self.repeat_after

    def steps(self) -> list[tuple[int, int, timedelta]]:
        """Every (cycle, level index, offset from the start) this policy will page, in order."""
        return [
            (cycle, i, cycle * self.cycle + level.after)
            for cycle in range(self.repeat + 1)
            for i, level in enumerate(self.levels)
        ]
