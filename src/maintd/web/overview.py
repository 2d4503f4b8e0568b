"""What the overview page shows, gathered from one read session: open incidents by priority with
their response deadlines, who is on call, failing tasks, and the next maintenance windows."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from pydantic import TypeAdapter
from sqlalchemy.orm import Session

from maintd import views
from maintd.alerts.muting import WindowStatus, window_status
from maintd.incidents import service
from maintd.incidents.states import State
from maintd.oncall import OnCallSchedule, on_call
from maintd.plan.incidents import MaintenanceWindow, Priority
from maintd.store.models import IncidentRow

FAILING = ("critical", "warning", "unknown")
OPEN_LIMIT = 1000  # an overview, not an archive: the incidents page pages through the rest

_schedules = TypeAdapter(list[OnCallSchedule])
_windows = TypeAdapter(list[MaintenanceWindow])


@dataclass(frozen=True)
class Deadline:
    """How long is left to acknowledge (negative: overdue); None once someone acknowledged."""

    left: timedelta | None

    @property
    def overdue(self) -> bool:
        return self.left is not None and self.left < timedelta(0)


@dataclass
class PriorityGroup:
    priority: str
    incidents: list[tuple[IncidentRow, Deadline]] = field(default_factory=list)


@dataclass(frozen=True)
class Failing:
    task: str
    kind: str
    target: str
    status: str
    run_id: str | None
    finished_at: datetime | None


@dataclass
class Overview:
    groups: list[PriorityGroup]
    open_count: int
    oncall: list[tuple[str, dict[str, str | None]]]
    failing: list[Failing]
    windows: list[WindowStatus]


def deadline(incident: IncidentRow, now: datetime) -> Deadline:
    if incident.state != State.triggered.value:
        return Deadline(None)
    return Deadline(incident.ack_deadline - now)


def gather(session: Session, now: datetime) -> Overview:
    rows = service.list_incidents(session, state=service.OPEN_FILTER, limit=OPEN_LIMIT)
    groups = {p.value: PriorityGroup(p.value) for p in Priority}
    for row in rows:
        groups.setdefault(row.priority, PriorityGroup(row.priority)).incidents.append(
            (row, deadline(row, now))
        )
    for group in groups.values():
        # The most urgent first: unacknowledged by deadline, then the acknowledged, newest first.
        group.incidents.sort(key=lambda pair: (pair[1].left is None, pair[0].ack_deadline))
    plan = views.active_plan(session)
    document: dict[str, Any] = plan.document if plan is not None else {}
    return Overview(
        groups=list(groups.values()),
        open_count=len(rows),
        oncall=[(s.name, on_call(s, now)) for s in _schedules.validate_python(document.get("schedules", []))],
        failing=failing_tasks(session),
        windows=next_windows(document, now),
    )


def failing_tasks(session: Session) -> list[Failing]:
    out = []
    for task in views.tasks(session):
        for target in task.targets:
            if target.last_status in FAILING:
                out.append(
                    Failing(
                        task.name,
                        task.kind,
                        target.target,
                        target.last_status,
                        target.last_run_id,
                        target.last_finished_at,
                    )
                )
    return sorted(out, key=lambda f: (FAILING.index(f.status), f.task, f.target))


def next_windows(document: dict[str, Any], now: datetime, limit: int = 5) -> list[WindowStatus]:
    """Open ones first, then by when they next open."""
    declared = _windows.validate_python(document.get("incidents", {}).get("maintenance_windows", []))
    found = [window_status(w, now) for w in declared]
    found = [w for w in found if w.open or w.next_start is not None]
    far = datetime.max.replace(tzinfo=now.tzinfo)
    found.sort(key=lambda w: (not w.open, w.next_start or far))
    return found[:limit]
