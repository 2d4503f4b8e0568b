"""Runs as JSON messages: names and the plan digest, never plan objects.

A message carries a batch of runs of one plan version: ``{"plan": digest, "runs": [run, ...]}``,
each run the fields of ``FIELDS`` but ``plan``. A message of one run without ``runs`` (the format
before batches, still in a queue after an upgrade) is read as a batch of one.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from maintd.plan.loader import LoadedPlan
from maintd.plan.models import Target, Task
from maintd.scheduler.orders import RunOrder, Trigger

FIELDS = (
    "run_id", "schedule_id", "task", "target", "plan", "trigger", "attempt",
    "scheduled_for", "window_end", "in_window", "dry_run",
)  # fmt: skip
RUN_FIELDS = tuple(f for f in FIELDS if f != "plan")


class BadMessage(ValueError):
    pass


def _run(order: RunOrder) -> dict[str, Any]:
    return {
        "run_id": order.run_id,
        "schedule_id": order.schedule_id,
        "task": order.task.name,
        "target": order.target.name,
        "trigger": order.trigger.value,
        "attempt": order.attempt,
        "scheduled_for": order.scheduled_for.isoformat(),
        "window_end": order.window_end.isoformat() if order.window_end else None,
        "in_window": order.in_window,
        "dry_run": order.dry_run,
    }


def to_message(order: RunOrder, digest: str) -> dict[str, Any]:
    """One run, in the single-run format (``from_batch`` reads it too)."""
    return {**_run(order), "plan": digest}


def to_batch(orders: Sequence[RunOrder], digest: str) -> dict[str, Any]:
    """Several runs of one plan version in one message."""
    return {"plan": digest, "runs": [_run(o) for o in orders]}


def runs_of(message: dict[str, Any]) -> list[dict[str, Any]]:
    """The runs a message carries: its ``runs``, or the message itself in the single-run format."""
    runs = message.get("runs", [message])
    if not isinstance(runs, list) or not all(isinstance(r, dict) for r in runs):
        raise BadMessage(f"run message whose runs are not a list of objects: {message!r:.300}")
    return runs


def from_batch(message: dict[str, Any], loaded: LoadedPlan) -> list[RunOrder]:
    """The orders of a message, their tasks, targets and configs from the plan version it names."""
    tasks = {t.name: t for t in loaded.plan.tasks}
    targets = {t.name: t for t in loaded.plan.targets}
    return [_order(run, loaded, tasks, targets) for run in runs_of(message)]


def from_message(message: dict[str, Any], loaded: LoadedPlan) -> RunOrder:
    """The order of a single-run message."""
    (order,) = from_batch(message, loaded)
    return order


def _order(
    run: dict[str, Any], loaded: LoadedPlan, tasks: dict[str, Task], targets: dict[str, Target]
) -> RunOrder:
    missing = [f for f in RUN_FIELDS if f not in run]
    if missing:
        raise BadMessage(f"run message without {', '.join(missing)}: {run!r:.300}")
    task, target = tasks.get(run["task"]), targets.get(run["target"])
    if task is None or target is None:
        raise BadMessage(f"plan {loaded.digest[:12]} has no task {run['task']!r} on target {run['target']!r}")
    window_end = run["window_end"]
    return RunOrder(
        str(run["run_id"]),
        int(run["schedule_id"]),
        task,
        target,
        loaded.configs[task.name],
        Trigger(run["trigger"]),
        int(run["attempt"]),
        datetime.fromisoformat(run["scheduled_for"]),
        datetime.fromisoformat(window_end) if window_end else None,
        bool(run["in_window"]),
        bool(run["dry_run"]),
    )
