"""The plan: YAML documents describing targets, tasks and schedules."""

from __future__ import annotations

from maintd.plan.loader import LoadedPlan, PlanError, Problem, load_plan
from maintd.plan.models import Plan, Selector, Stage, Target, TargetKind, Task
from maintd.plan.schedule import Cadence, Due, Misfire, Schedule, Timing

__all__ = [
    "Cadence",
    "Due",
    "LoadedPlan",
    "Misfire",
    "Plan",
    "PlanError",
    "Problem",
    "Schedule",
    "Selector",
    "Stage",
    "Target",
    "TargetKind",
    "Task",
    "Timing",
    "load_plan",
]
