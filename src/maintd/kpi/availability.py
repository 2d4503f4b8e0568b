"""Availability per target: the share of observed time its probes said it was up.

A target is down while the latest run of any of its probe tasks (the kinds in PROBE_KINDS) is
critical, up while none is, and unobserved before its first run: unobserved time counts neither
way. Each status holds from the run that reported it until the next run of the same task.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from maintd.kpi.model import Figure
from maintd.store.models import RunRow

PROBE_KINDS = ("http", "tcp", "dns", "mcp", "postgres", "redis", "nagios", "kubernetes")
TARGET = 99.9  # the seed's availability objective


def availability_figures(session: Session, start: datetime, end: datetime) -> list[Figure]:
    finished = (
        RunRow.kind.in_(PROBE_KINDS),
        RunRow.state == "finished",
        RunRow.dry_run.is_(False),
        RunRow.finished_at.is_not(None),
    )
    rows = session.execute(
        select(RunRow.target, RunRow.task, RunRow.finished_at, RunRow.status)
        .where(*finished, RunRow.finished_at >= start, RunRow.finished_at < end)
        .order_by(RunRow.finished_at)
    ).all()
    timelines: dict[str, list[tuple[datetime, str, str]]] = defaultdict(list)
    for target, task, at, status in rows:
        if at is not None:  # excluded by the query; the check tells the type checker
            timelines[target].append((at, task, status or "unknown"))
    figures = []
    for target in sorted(timelines):
        before = _statuses_at(session, target, start, finished)
        up, down = _sweep(timelines[target], before, start, end)
        observed = up + down
        figures.append(
            Figure(
                name=f"availability.{target}",
                group="availability",
                title=f"Availability of {target}",
                value=round(100.0 * up / observed, 4) if observed else None,
                unit="%",
                how=f"up {up:.0f} s of {observed:.0f} s observed by {len(timelines[target])} probe runs",
                samples=len(timelines[target]),
                target=TARGET,
                better="higher",
            )
        )
    return figures


def _statuses_at(session: Session, target: str, at: datetime, finished: tuple[object, ...]) -> dict[str, str]:
    """Each probe task's latest status on ``target`` before ``at``: what holds when the period opens."""
    latest = (
        select(RunRow.task, RunRow.status, RunRow.finished_at)
        .where(*finished, RunRow.target == target, RunRow.finished_at < at)  # type: ignore[arg-type]
        .order_by(RunRow.finished_at.desc())
        .limit(1000)
    )
    statuses: dict[str, str] = {}
    for task, status, _ in session.execute(latest):
        statuses.setdefault(task, status or "unknown")
    return statuses


def _sweep(
    timeline: list[tuple[datetime, str, str]], statuses: dict[str, str], start: datetime, end: datetime
) -> tuple[float, float]:
    """Seconds up and down between ``start`` and ``end``, given the runs in order."""
    up = down = 0.0
    since = start
    for at, task, status in [*timeline, (end, "", "")]:
        span = (at - since).total_seconds()
        if statuses:
            if "critical" in statuses.values():
                down += span
            else:
                up += span
        since = at
        if task:
            statuses[task] = status
    return up, down


Timeline = list[tuple[datetime, str, str]]  # (finished_at, task, status), in order


def probe_timeline(
    session: Session, target: str, start: datetime, end: datetime, *, tasks: tuple[str, ...] = ()
) -> tuple[dict[str, str], Timeline]:
    """One target's probe statuses holding at ``start`` and its probe runs in ``[start, end)``,
    only those of ``tasks`` when given: the input of ``uptime`` (the SLOs of maintd.slo read it)."""
    finished: tuple[object, ...] = (
        RunRow.kind.in_(PROBE_KINDS),
        RunRow.state == "finished",
        RunRow.dry_run.is_(False),
        RunRow.finished_at.is_not(None),
        *((RunRow.task.in_(tasks),) if tasks else ()),
    )
    rows = session.execute(
        select(RunRow.finished_at, RunRow.task, RunRow.status)
        .where(*finished, RunRow.target == target, RunRow.finished_at >= start, RunRow.finished_at < end)  # type: ignore[arg-type]
        .order_by(RunRow.finished_at)
    ).all()
    timeline = [(at, task, status or "unknown") for at, task, status in rows if at is not None]
    return _statuses_at(session, target, start, finished), timeline


def uptime(
    timeline: Timeline, statuses: dict[str, str], start: datetime, end: datetime
) -> tuple[float, float]:
    """Seconds up and down in ``[start, end)`` (the same sweep as the availability KPI);
    ``statuses`` hold at the timeline's beginning, which may be before ``start``."""
    holding = dict(statuses)
    within = []
    for entry in timeline:
        if entry[0] < start:
            holding[entry[1]] = entry[2]
        elif entry[0] < end:
            within.append(entry)
    return _sweep(within, holding, start, end)
