"""What is wrong with pods, workloads and nodes: pure functions over the API's JSON objects.

Each ``assess_*`` takes the listed objects and the time now, and returns the
problems found (one per object, with every reason on its line) and counts for
the metrics. Nothing here talks to the network.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from maintd.checks.base import Status
from maintd.clock import utc

# Container waiting reasons that mean "this will not start by itself".
BAD_WAITING = frozenset(
    {
        "CrashLoopBackOff",
        "ImagePullBackOff",
        "ErrImagePull",
        "ErrImageNeverPull",
        "InvalidImageName",
        "CreateContainerConfigError",
        "CreateContainerError",
        "RunContainerError",
        "PreStartHookError",
        "PostStartHookError",
    }
)
PRESSURE = ("MemoryPressure", "DiskPressure", "PIDPressure")
# Progressing=True reasons of a deployment whose rollout is under way.
_ROLLING = frozenset({"NewReplicaSetCreated", "FoundNewReplicaSet", "ReplicaSetUpdated"})
# The order problem lines appear in (after severity): the infrastructure first.
ORDER = ("api", "nodes", "deployments", "statefulsets", "daemonsets", "pods")


@dataclass(frozen=True)
class Thresholds:
    grace: timedelta
    max_restarts: int
    oom_window: timedelta
    cordoned: Status


@dataclass
class Problem:
    status: Status
    category: str  # one of ORDER
    subject: str  # "pod production/api-7d9c8b6f5-fghij"
    reasons: list[str] = field(default_factory=list)

    def line(self) -> str:
        return f"{self.status} {self.subject}: {'; '.join(self.reasons)}"

    def sort_key(self) -> tuple[int, int, str]:
        return (-self.status.rank, ORDER.index(self.category), self.subject)


class _Finding:
    """Collects the reasons one object is unhealthy; the worst reason sets its status."""

    def __init__(self, category: str, subject: str) -> None:
        self.problem = Problem(Status.ok, category, subject)

    def add(self, status: Status, reason: str) -> None:
        if status is Status.ok:
            return
        self.problem.reasons.append(reason)
        if status.rank > self.problem.status.rank:
            self.problem.status = status

    def result(self) -> Problem | None:
        return self.problem if self.problem.reasons else None


# ---------------------------------------------------------------- pods


def assess_pods(
    pods: Iterable[dict[str, Any]], now: datetime, limits: Thresholds
) -> tuple[list[Problem], dict[str, float]]:
    counts = dict.fromkeys(
        (
            "pods_total",
            "pods_running",
            "pods_pending",
            "pods_succeeded",
            "pods_failed",
            "pods_unknown",
            "pods_terminating",
            "pods_not_ready",
            "pods_unhealthy",
            "containers_waiting",
            "containers_oom_killed",
            "restarts_total",
            "restarts_max",
        ),
        0.0,
    )
    problems = []
    for pod in pods:
        counts["pods_total"] += 1
        problem = _assess_pod(pod, now, limits, counts)
        if problem is not None:
            counts["pods_unhealthy"] += 1
            problems.append(problem)
    return problems, counts


def _assess_pod(
    pod: dict[str, Any], now: datetime, limits: Thresholds, counts: dict[str, float]
) -> Problem | None:
    meta, status = _obj(pod, "metadata"), _obj(pod, "status")
    found = _Finding("pods", f"pod {_name(meta)}")
    phase = status.get("phase") or "Unknown"
    counts_key = f"pods_{phase.lower()}"
    if counts_key in counts:
        counts[counts_key] += 1

    containers = [("init container", cs) for cs in _list(status, "initContainerStatuses")]
    containers += [("container", cs) for cs in _list(status, "containerStatuses")]
    for _label, cs in containers:
        restarts = _int(cs.get("restartCount"), 0)
        counts["restarts_total"] += restarts
        counts["restarts_max"] = max(counts["restarts_max"], float(restarts))

    deleting = _time(meta.get("deletionTimestamp"))
    if deleting is not None:
        # deletionTimestamp is when the kubelet's grace period runs out; a pod still
        # here well after it is stuck (often on a node that stopped answering).
        counts["pods_terminating"] += 1
        overdue = now - deleting
        if overdue > limits.grace:
            found.add(Status.warning, f"stuck Terminating, {human(overdue)} past its deletion deadline")
        return found.result()

    if phase == "Succeeded":
        return None

    # Containers first (their reasons explain the phase), but the phase leads the line.
    container_reasons: list[tuple[Status, str]] = []
    flagged = False
    for label, cs in containers:
        name = cs.get("name", "?")
        waiting = _obj(_obj(cs, "state"), "waiting")
        if waiting.get("reason") in BAD_WAITING and phase != "Failed":
            counts["containers_waiting"] += 1
            flagged = True
            reason = f"{label} {name} {waiting['reason']}{_message(waiting.get('message'))}"
            container_reasons.append((Status.critical, reason))
        restarts = _int(cs.get("restartCount"), 0)
        if restarts > limits.max_restarts:
            reason = f"{label} {name} restarted {restarts} times (max {limits.max_restarts})"
            container_reasons.append((Status.warning, reason))
        last = _obj(_obj(cs, "lastState"), "terminated")
        if last.get("reason") == "OOMKilled":
            finished = _time(last.get("finishedAt"))
            ago = now - finished if finished is not None else None
            if not limits.oom_window or (ago is not None and ago <= limits.oom_window):
                counts["containers_oom_killed"] += 1
                when = f" {human(ago)} ago" if ago is not None else ""
                container_reasons.append((Status.warning, f"{label} {name} was OOMKilled{when}"))

    if phase == "Failed":
        found.add(Status.critical, "Failed" + _why(status.get("reason"), status.get("message"), containers))
    elif phase == "Unknown":
        found.add(Status.critical, "phase Unknown" + _why(status.get("reason"), status.get("message"), []))
    elif phase == "Pending":
        created = _time(meta.get("creationTimestamp"))
        age = now - created if created is not None else timedelta(0)
        if age > limits.grace:
            scheduled = _condition(status, "PodScheduled") or {}
            if scheduled.get("status") == "False":
                why = _why(scheduled.get("reason") or "not scheduled", scheduled.get("message"), [])
            elif flagged:
                why = ""  # the container lines below say why
            else:
                why = _why(None, None, containers) or _why(status.get("reason"), status.get("message"), [])
            found.add(Status.critical, f"Pending for {human(age)}{why}")
    elif phase == "Running":
        ready = _condition(status, "Ready")
        if ready is not None and ready.get("status") != "True":
            counts["pods_not_ready"] += 1
            since = _time(ready.get("lastTransitionTime")) or _time(status.get("startTime"))
            age = now - since if since is not None else timedelta(0)
            if age > limits.grace and not flagged:
                unready = [
                    cs.get("name", "?")
                    for kind, cs in containers
                    if kind == "container" and not cs.get("ready")
                ]
                which = f" (containers {', '.join(unready)})" if unready else _message(ready.get("message"))
                found.add(Status.warning, f"not ready for {human(age)}{which}")
    for severity, reason in container_reasons:
        found.add(severity, reason)
    return found.result()


def _why(reason: Any, message: Any, containers: list[tuple[str, dict[str, Any]]]) -> str:
    """``: Reason: message``, or the first container that says why it is not running."""
    if reason or message:
        return ": " + ": ".join(_one_line(str(part)) for part in (reason, message) if part)
    for label, cs in containers:
        state = _obj(cs, "state")
        for key in ("waiting", "terminated"):
            detail = _obj(state, key)
            if detail.get("reason") and detail.get("reason") != "Completed":
                exit_code = f" exit code {detail['exitCode']}" if "exitCode" in detail else ""
                return f": {label} {cs.get('name', '?')} {detail['reason']}{exit_code}"
    return ""


# ---------------------------------------------------------------- workloads


def assess_deployments(
    deployments: Iterable[dict[str, Any]],
) -> tuple[list[Problem], dict[str, float]]:
    counts = dict.fromkeys(
        ("deployments_total", "deployments_unavailable", "deployments_stuck", "deployments_paused"), 0.0
    )
    problems = []
    for deployment in deployments:
        counts["deployments_total"] += 1
        meta, spec, status = (
            _obj(deployment, "metadata"),
            _obj(deployment, "spec"),
            _obj(deployment, "status"),
        )
        found = _Finding("deployments", f"deployment {_name(meta)}")
        desired = _int(spec.get("replicas"), 1)
        available = _int(status.get("availableReplicas"), 0)
        updated = _int(status.get("updatedReplicas"), 0)
        progressing = _condition(status, "Progressing") or {}
        available_condition = _condition(status, "Available") or {}
        failure = _condition(status, "ReplicaFailure") or {}
        rolling = progressing.get("status") == "True" and progressing.get("reason") in _ROLLING

        stuck = progressing.get("status") == "False"
        if stuck:
            counts["deployments_stuck"] += 1
            found.add(
                Status.critical,
                "rollout stuck" + _why(progressing.get("reason"), progressing.get("message"), []),
            )
        if failure.get("status") == "True":
            found.add(
                Status.critical, "ReplicaFailure" + _why(failure.get("reason"), failure.get("message"), [])
            )
        if spec.get("paused"):
            counts["deployments_paused"] += 1
            found.add(Status.warning, "rollout paused")
        if available < desired:
            counts["deployments_unavailable"] += 1
            below_minimum = available_condition.get("status") == "False"
            if available == 0 or below_minimum:
                severity = Status.critical
            else:
                # Above the strategy's minimum: normal while a rollout replaces pods.
                severity = Status.ok if rolling else Status.warning
            why = ""
            if below_minimum:
                why = _why(available_condition.get("reason"), available_condition.get("message"), [])
            found.add(severity, f"{available}/{desired} available, {updated}/{desired} updated{why}")
        elif updated < desired and not (rolling or stuck or spec.get("paused")):
            found.add(Status.warning, f"{updated}/{desired} updated to the current template")
        problem = found.result()
        if problem is not None:
            problems.append(problem)
    return problems, counts


def assess_statefulsets(
    statefulsets: Iterable[dict[str, Any]],
) -> tuple[list[Problem], dict[str, float]]:
    counts = dict.fromkeys(("statefulsets_total", "statefulsets_unavailable"), 0.0)
    problems = []
    for sts in statefulsets:
        counts["statefulsets_total"] += 1
        meta, spec, status = _obj(sts, "metadata"), _obj(sts, "spec"), _obj(sts, "status")
        desired = _int(spec.get("replicas"), 1)
        ready = _int(status.get("availableReplicas", status.get("readyReplicas")), 0)
        rolling = status.get("updateRevision", "") != status.get("currentRevision", "")
        if ready < desired:
            counts["statefulsets_unavailable"] += 1
            found = _Finding("statefulsets", f"statefulset {_name(meta)}")
            severity = Status.critical if ready == 0 else (Status.ok if rolling else Status.warning)
            found.add(severity, f"{ready}/{desired} ready")
            if (problem := found.result()) is not None:
                problems.append(problem)
    return problems, counts


def assess_daemonsets(
    daemonsets: Iterable[dict[str, Any]],
) -> tuple[list[Problem], dict[str, float]]:
    counts = dict.fromkeys(("daemonsets_total", "daemonsets_unavailable"), 0.0)
    problems = []
    for ds in daemonsets:
        counts["daemonsets_total"] += 1
        meta, status = _obj(ds, "metadata"), _obj(ds, "status")
        desired = _int(status.get("desiredNumberScheduled"), 0)
        available = _int(status.get("numberAvailable"), 0)
        misscheduled = _int(status.get("numberMisscheduled"), 0)
        found = _Finding("daemonsets", f"daemonset {_name(meta)}")
        if available < desired:
            counts["daemonsets_unavailable"] += 1
            found.add(
                Status.critical if available == 0 else Status.warning, f"{available}/{desired} available"
            )
        if misscheduled:
            found.add(Status.warning, f"{misscheduled} running on nodes they should not")
        if (problem := found.result()) is not None:
            problems.append(problem)
    return problems, counts


# ---------------------------------------------------------------- nodes


def assess_nodes(
    nodes: Iterable[dict[str, Any]], now: datetime, limits: Thresholds
) -> tuple[list[Problem], dict[str, float]]:
    counts = dict.fromkeys(
        (
            "nodes_total",
            "nodes_ready",
            "nodes_not_ready",
            "nodes_pressure",
            "nodes_network_unavailable",
            "nodes_cordoned",
        ),
        0.0,
    )
    problems = []
    for node in nodes:
        counts["nodes_total"] += 1
        meta, spec, status = _obj(node, "metadata"), _obj(node, "spec"), _obj(node, "status")
        found = _Finding("nodes", f"node {meta.get('name', '?')}")
        ready = _condition(status, "Ready")
        if ready is not None and ready.get("status") == "True":
            counts["nodes_ready"] += 1
        else:
            counts["nodes_not_ready"] += 1
            state = ready.get("status", "Unknown") if ready is not None else "missing"
            since = _time((ready or {}).get("lastTransitionTime")) or _time(meta.get("creationTimestamp"))
            age = now - since if since is not None else timedelta(0)
            if age > limits.grace:
                why = _why((ready or {}).get("reason"), (ready or {}).get("message"), [])
                found.add(Status.critical, f"NotReady (Ready={state}) for {human(age)}{why}")
        pressures = [c for c in PRESSURE if (_condition(status, c) or {}).get("status") == "True"]
        if pressures:
            counts["nodes_pressure"] += 1
            for kind in pressures:
                found.add(Status.warning, _since(kind, _condition(status, kind) or {}, now))
        network = _condition(status, "NetworkUnavailable") or {}
        if network.get("status") == "True":
            counts["nodes_network_unavailable"] += 1
            found.add(Status.critical, _since("NetworkUnavailable", network, now))
        if spec.get("unschedulable"):
            counts["nodes_cordoned"] += 1
            found.add(limits.cordoned, "cordoned (SchedulingDisabled)")
        if (problem := found.result()) is not None:
            problems.append(problem)
    return problems, counts


def _since(kind: str, condition: dict[str, Any], now: datetime) -> str:
    since = _time(condition.get("lastTransitionTime"))
    age = f" for {human(now - since)}" if since is not None else ""
    return f"{kind}{age}{_why(condition.get('reason'), condition.get('message'), [])}"


# ---------------------------------------------------------------- helpers


def human(delta: timedelta) -> str:
    """Like kubectl's AGE column: 45s, 12m, 5h, 3d."""
    seconds = max(0, int(delta.total_seconds()))
    if seconds < 120:
        return f"{seconds}s"
    if seconds < 2 * 3600:
        return f"{seconds // 60}m"
    if seconds < 2 * 86400:
        return f"{seconds // 3600}h"
    return f"{seconds // 86400}d"


def _obj(parent: dict[str, Any], key: str) -> dict[str, Any]:
    value = parent.get(key)
    return value if isinstance(value, dict) else {}


def _list(parent: dict[str, Any], key: str) -> list[dict[str, Any]]:
    value = parent.get(key)
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def _condition(status: dict[str, Any], kind: str) -> dict[str, Any] | None:
    for condition in _list(status, "conditions"):
        if condition.get("type") == kind:
            return condition
    return None


def _name(meta: dict[str, Any]) -> str:
    namespace = meta.get("namespace")
    return f"{namespace}/{meta.get('name', '?')}" if namespace else str(meta.get("name", "?"))


def _int(value: Any, default: int) -> int:
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else default


def _time(value: Any) -> datetime | None:
    """An RFC 3339 timestamp as the API writes it (``2026-11-27T00:52:00Z``)."""
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return utc(parsed)


def _message(message: Any) -> str:
    return f": {_one_line(str(message))}" if message else ""


def _one_line(text: str, limit: int = 200) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"
