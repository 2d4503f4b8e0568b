"""What the reports measure beyond the KPIs: incidents per week and type, response times per month,
each task's failure rate and run-time/metric baselines. Only finished real runs count (no dry runs),
in the period they started in; incidents in the period they were opened in."""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from maintd.kpi.incidents import PRIORITIES
from maintd.kpi.model import mean
from maintd.reports.period import _back
from maintd.store.models import IncidentRow, RunRow

WEEK = timedelta(days=7)
REAL = (RunRow.state == "finished", RunRow.dry_run.is_(False))


def weeks(start: datetime, end: datetime) -> list[datetime]:
    """The starts of the 7-day buckets from ``start`` (the last one may be short)."""
    out, at = [], start
    while at < end:
        out.append(at)
        at += WEEK
    return out


def incidents_per_week(session: Session, start: datetime, end: datetime) -> dict[str, list[int]]:
    """Per priority, the incidents opened in each week of ``weeks(start, end)``."""
    starts = weeks(start, end)
    counts = {p: [0] * len(starts) for p in PRIORITIES}
    for priority, opened in session.execute(
        select(IncidentRow.priority, IncidentRow.opened_at).where(
            IncidentRow.opened_at >= start, IncidentRow.opened_at < end
        )
    ):
        if priority in counts:
            counts[priority][int((opened - start) / WEEK)] += 1
    return counts


def months(start: datetime, end: datetime) -> list[tuple[datetime, datetime]]:
    """The calendar months (UTC) from ``start``'s to the one before ``end``."""
    out, at = [], start.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    while at < end:
        year, month = _back(at.year, at.month, -1)
        nxt = at.replace(year=year, month=month)
        out.append((max(at, start), min(nxt, end)))
        at = nxt
    return out


@dataclass(frozen=True)
class Response:
    label: str  # YYYY-MM
    incidents: int
    mtta_min: float | None
    mttr_min: float | None


def response_per_month(session: Session, start: datetime, end: datetime) -> list[Response]:
    """Mean minutes to acknowledge and to resolve, over every priority, per month opened."""
    out = []
    for a, b in months(start, end):
        rows = session.execute(
            select(IncidentRow.opened_at, IncidentRow.acknowledged_at, IncidentRow.resolved_at).where(
                IncidentRow.opened_at >= a, IncidentRow.opened_at < b
            )
        ).all()
        acked = [(r.acknowledged_at - r.opened_at).total_seconds() / 60 for r in rows if r.acknowledged_at]
        solved = [(r.resolved_at - r.opened_at).total_seconds() / 60 for r in rows if r.resolved_at]
        out.append(Response(f"{a:%Y-%m}", len(rows), mean(acked), mean(solved)))
    return out


def incidents_by_type(session: Session, start: datetime, end: datetime) -> Counter[str]:
    """Incidents opened per type: the ``alertname`` label, else ``type``, else the title."""
    found: Counter[str] = Counter()
    for title, labels in session.execute(
        select(IncidentRow.title, IncidentRow.labels).where(
            IncidentRow.opened_at >= start, IncidentRow.opened_at < end
        )
    ):
        labels = labels or {}
        found[str(labels.get("alertname") or labels.get("type") or title)] += 1
    return found


@dataclass(frozen=True)
class TaskRuns:
    task: str
    kind: str
    runs: int
    failed: int  # not ok
    mean_ms: float

    @property
    def failure_rate(self) -> float:
        return round(100.0 * self.failed / self.runs, 3) if self.runs else 0.0


def task_runs(session: Session, start: datetime, end: datetime) -> dict[str, TaskRuns]:
    """Per task: runs, runs not ok and the mean run time."""
    tally: dict[str, list[float]] = defaultdict(lambda: [0, 0, 0.0])
    kinds: dict[str, str] = {}
    total_ms = func.coalesce(func.sum(RunRow.duration_ms), 0)
    for task, kind, status, n, ms in session.execute(
        select(RunRow.task, RunRow.kind, RunRow.status, func.count(), total_ms)
        .where(*REAL, RunRow.started_at >= start, RunRow.started_at < end)
        .group_by(RunRow.task, RunRow.kind, RunRow.status)
    ):  # fmt: skip
        t = tally[task]
        t[0] += n
        t[1] += 0 if status == "ok" else n
        t[2] += float(ms or 0)
        kinds[task] = kind
    return {
        task: TaskRuns(task, kinds[task], int(n), int(f), round(ms / n, 3) if n else 0.0)
        for task, (n, f, ms) in sorted(tally.items())
    }


def metric_means(session: Session, start: datetime, end: datetime) -> dict[tuple[str, str], float]:
    """Per (task, metric), the mean of the metric's numeric values over the runs; the run time is
    the metric ``duration_ms``."""
    sums: dict[tuple[str, str], list[float]] = defaultdict(lambda: [0.0, 0])
    rows = session.execute(
        select(RunRow.task, RunRow.duration_ms, RunRow.metrics)
        .where(*REAL, RunRow.started_at >= start, RunRow.started_at < end)
        .execution_options(yield_per=2000)
    )
    for task, duration, metrics in rows:
        values = dict(metrics or {})
        if duration is not None:
            values["duration_ms"] = duration
        for name, value in values.items():
            if isinstance(value, int | float) and not isinstance(value, bool):
                acc = sums[(task, name)]
                acc[0] += float(value)
                acc[1] += 1
    return {key: round(total / n, 3) for key, (total, n) in sorted(sums.items()) if n}
