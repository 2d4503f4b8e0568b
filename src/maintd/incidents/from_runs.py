"""Alerts raised by a task's own runs: after N non-ok runs in a row, resolved when it recovers.

A failure that gets worse while it lasts (warning, then critical) is delivered again with the worse
severity: the pipeline classifies it again and may raise its incident's priority.
"""

from __future__ import annotations

from maintd.alerts.model import AlertIn, AlertStatus, Severity
from maintd.checks.base import Status
from maintd.runner.recorder import Streak

_SEVERITY = {
    Status.critical: Severity.critical,
    Status.unknown: Severity.error,
    Status.warning: Severity.warning,
}


def alerts_from_streaks(streaks: list[Streak]) -> list[AlertIn]:
    """Deliveries for the streaks that crossed a task's ``alert.after`` threshold, either way."""
    out = []
    for streak in streaks:
        order = streak.finished.order
        spec = order.task.alert
        if spec is None:
            continue
        result = streak.finished.result
        fired = streak.before < spec.after <= streak.after
        recovered = streak.before >= spec.after and streak.after == 0
        worse = (
            spec.after <= streak.before < streak.after
            and streak.previous is not None
            and Status(streak.previous).rank < result.status.rank
        )
        if not (fired or recovered or worse):
            continue
        # Labels only from what stays the same while the task fails: they are the alert's identity.
        labels = {
            **order.target.labels,
            **spec.labels,
            "alertname": order.task.name,
            "task": order.task.name,
            "target": order.target.name,
            "kind": order.task.kind,
        }
        if spec.priority is not None:
            labels["priority"] = spec.priority.value
        annotations = {"run_id": order.run_id, "output": result.output[:1000]}
        if spec.runbook:
            annotations["runbook"] = spec.runbook
        first_line = result.output.splitlines()[0] if result.output else ""
        out.append(
            AlertIn(
                source="run",
                labels=labels,
                annotations=annotations,
                status=AlertStatus.resolved if recovered else AlertStatus.firing,
                severity=_SEVERITY.get(result.status, Severity.error),
                summary=f"{order.task.name} on {order.target.name}: {first_line}"[:300],
                starts_at=streak.finished.finished_at,
                ends_at=streak.finished.finished_at if recovered else None,
            )
        )
    return out
