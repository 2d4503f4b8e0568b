"""A run as a JSON message: names and the plan digest, never plan objects."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from maintd.plan.loader import LoadedPlan
from maintd.scheduler.orders import RunOrder, Trigger

FIELDS = (
    "run_id", "schedule_id", "task", "target", "plan", "trigger", "attempt",
    "scheduled_for", "window_end", "in_window", "dry_run",
)  # fmt: skip


class BadMessage(ValueError):
    pass


def to_message(order: RunOrder, digest: str) -> dict[str, Any]:
    return {
        "run_id": order.run_id,
        "schedule_id": order.schedule_id,
        "task": order.task.name,
        "target": order.target.name,
        "plan": digest,
        "trigger": order.trigger.value,
        "attempt": order.attempt,
        "scheduled_for": order.scheduled_for.isoformat(),
        "window_end": order.window_end.isoformat() if order.window_end else None,
        "in_window": order.in_window,
        "dry_run": order.dry_run,
    }


def from_message(message: dict[str, Any], loaded: LoadedPlan) -> RunOrder:
    """The order again, its task, target and config from the plan version the message names."""
    missing = [f for f in FIELDS if f not in message]
    if missing:
        raise BadMessage(f"run message without {', '.join(missing)}: {message!r}")
    tasks = [t for t in loaded.plan.tasks if t.name == message["task"]]
    targets = [t for t in loaded.plan.targets if t.name == message["target"]]
    if not tasks or not targets:
        raise BadMessage(
            f"plan {loaded.digest[:12]} has no task {message['task']!r} on target {message['target']!r}"
        )
    window_end = message["window_end"]
    return RunOrder(
        str(message["run_id"]),
        int(message["schedule_id"]),
        tasks[0],
        targets[0],
        loaded.configs[tasks[0].name],
        Trigger(message["trigger"]),
        int(message["attempt"]),
        datetime.fromisoformat(message["scheduled_for"]),
        datetime.fromisoformat(window_end) if window_end else None,
        bool(message["in_window"]),
        bool(message["dry_run"]),
    )
