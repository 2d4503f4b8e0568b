"""The ``slos`` plan section: service level objectives on the availability of a target.

::

    slos:
      - name: web-availability
        target: web                 # a plan target; its probe runs say when it was up
        objective: 99.9             # percent of observed time up, over ``window``
        window: 30d
        tasks: [web-http]           # only these probe tasks (default: every probe task on it)

What an SLO's budget and burn rates are, and the alerts they raise, is ``maintd.slo``.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from pydantic import Field, field_validator

from maintd.plan.base import StrictModel
from maintd.plan.oncall import Loc, Name
from maintd.plan.types import Duration

if TYPE_CHECKING:
    from maintd.plan.models import Plan


class Slo(StrictModel):
    """An availability objective for one target over a rolling window."""

    name: Name
    description: str = Field(default="", description="what the objective promises, for people")
    target: Name = Field(description="the plan target whose availability is measured")
    objective: float = Field(
        default=99.9, gt=0, lt=100, description="percent of observed time the target must be up"
    )
    window: Duration = Field(
        default=timedelta(days=30), description="the rolling period the objective and its budget cover"
    )
    tasks: list[Name] = Field(
        default=[], description="only the runs of these probe tasks count (default: every probe task)"
    )

    @field_validator("window")
    @classmethod
    def _window(cls, value: timedelta) -> timedelta:
        if not timedelta(hours=1) <= value <= timedelta(days=366):
            raise ValueError("window must be between 1h and 366d")
        return value


def slo_problems(plan: Plan) -> list[tuple[Loc, str]]:
    """Unique names; the target and the tasks named exist, and each task runs on the target."""
    problems: list[tuple[Loc, str]] = []
    targets = {t.name for t in plan.targets}
    tasks = {t.name: t for t in plan.tasks}
    seen: set[str] = set()
    for i, slo in enumerate(plan.slos):
        if slo.name in seen:
            problems.append((("slos", i, "name"), f"slo {slo.name!r} is defined twice"))
        seen.add(slo.name)
        if slo.target not in targets:
            problems.append((("slos", i, "target"), f"unknown target {slo.target!r}"))
            continue
        for j, name in enumerate(slo.tasks):
            task = tasks.get(name)
            if task is None:
                problems.append((("slos", i, "tasks", j), f"unknown task {name!r}"))
            elif slo.target not in {t.name for t in plan.targets_of(task)}:
                problems.append((("slos", i, "tasks", j), f"task {name!r} does not run on {slo.target!r}"))
    return problems
