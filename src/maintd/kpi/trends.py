"""How things move: incident frequency against the period before, response times by incident type,
check latency and cache hit ratio against the period before, maintenance runs' durations, and the
security scans' findings.

"The period before" is the one of the same length just before the report's: a change is
``(now - before) / before`` in percent, positive when the figure grew.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from maintd.kpi.model import Figure, mean, nearest_rank
from maintd.store.models import IncidentRow, RunRow

TYPES_LISTED = 10  # incident types with their own MTTA/MTTR figures, the most frequent first


def trend_figures(session: Session, start: datetime, end: datetime) -> list[Figure]:
    before = start - (end - start)
    return [
        _incident_change(session, before, start, end),
        *_by_type(session, start, end),
        *_metric_change(session, before, start, end, kind="http", metric="time", what="HTTP latency"),
        *_hit_ratio(session, start, end),
        _window_seconds(session, start, end),
        *_findings(session, start, end),
    ]


def _change(now: float | None, then: float | None) -> float | None:
    if now is None or not then:
        return None
    return round(100.0 * (now - then) / then, 3)


def _incident_change(session: Session, before: datetime, start: datetime, end: datetime) -> Figure:
    def opened(a: datetime, b: datetime) -> int:
        stmt = select(func.count()).select_from(IncidentRow)
        return session.scalar(stmt.where(IncidentRow.opened_at >= a, IncidentRow.opened_at < b)) or 0

    now, then = opened(start, end), opened(before, start)
    return Figure(
        name="incidents.change",
        group="incidents",
        title="Incident frequency against the period before",
        value=_change(float(now), float(then)),
        unit="%",
        how=f"{now} incidents opened in the period, {then} in the period of the same length before it",
        samples=now + then,
        target=0.0,
        better="lower",
    )


def _by_type(session: Session, start: datetime, end: datetime) -> list[Figure]:
    """MTTA and MTTR per incident type: the ``alertname`` its alerts were grouped by."""
    rows = session.execute(
        select(
            IncidentRow.labels, IncidentRow.opened_at, IncidentRow.acknowledged_at, IncidentRow.resolved_at
        ).where(IncidentRow.opened_at >= start, IncidentRow.opened_at < end)
    ).all()
    by_type: dict[str, list[tuple[float | None, float | None]]] = defaultdict(list)
    for labels, opened, acked, resolved in rows:
        kind = (labels or {}).get("alertname") or "(no alertname)"
        by_type[kind].append(
            (
                (acked - opened).total_seconds() if acked else None,
                (resolved - opened).total_seconds() if resolved else None,
            )
        )
    figures = []
    for kind, _ in Counter({k: len(v) for k, v in by_type.items()}).most_common(TYPES_LISTED):
        acks = [a for a, _ in by_type[kind] if a is not None]
        fixes = [r for _, r in by_type[kind] if r is not None]
        n = len(by_type[kind])
        for key, verb, values in (("mtta", "acknowledge", acks), ("mttr", "resolve", fixes)):
            figures.append(
                Figure(
                    name=f"incidents.{key}.type.{kind}",
                    group="incidents",
                    title=f"Mean time to {verb} {kind} incidents",
                    value=mean(values),
                    unit="s",
                    how=(
                        f"mean over {len(values)} of {n} {kind} incidents {verb}d; "
                        f"p90 {nearest_rank(values, 0.9)} s"
                    ),
                    samples=len(values),
                )
            )
    return figures


def _metric_means(
    session: Session, kind: str, metric: str, a: datetime, b: datetime
) -> dict[str, tuple[float, int]]:
    """Per target: the mean of ``metric`` over the finished runs of ``kind`` that reported it."""
    rows = session.execute(
        select(RunRow.target, RunRow.metrics).where(
            RunRow.kind == kind,
            RunRow.started_at >= a,
            RunRow.started_at < b,
            RunRow.state == "finished",
            RunRow.dry_run.is_(False),
        )
    )
    values: dict[str, list[float]] = defaultdict(list)
    for target, metrics in rows:
        value = (metrics or {}).get(metric)
        if isinstance(value, int | float):
            values[target].append(float(value))
    return {t: (sum(v) / len(v), len(v)) for t, v in values.items()}


def _metric_change(
    session: Session, before: datetime, start: datetime, end: datetime, *, kind: str, metric: str, what: str
) -> list[Figure]:
    now, then = (
        _metric_means(session, kind, metric, start, end),
        _metric_means(session, kind, metric, before, start),
    )
    figures = []
    for target in sorted(now):
        mean_now, n = now[target]
        mean_then = then.get(target, (None, 0))[0]
        was = f"{mean_then * 1000:.1f} ms" if mean_then is not None else "no runs"
        figures.append(
            Figure(
                name=f"performance.{kind}_{metric}.{target}",
                group="performance",
                title=f"{what} of {target} against the period before",
                value=_change(mean_now, mean_then),
                unit="%",
                how=f"mean {metric} {mean_now * 1000:.1f} ms over {n} {kind} runs; the period before: {was}",
                samples=n,
                target=0.0,
                better="lower",
            )
        )
    return figures


def _hit_ratio(session: Session, start: datetime, end: datetime) -> list[Figure]:
    found = _metric_means(session, "redis", "hit_ratio", start, end)
    return [
        Figure(
            name=f"performance.cache_hit_ratio.{target}",
            group="performance",
            title=f"Cache hit ratio of {target}",
            value=round(100.0 * ratio, 3),
            unit="%",
            how=f"mean hit_ratio over {n} redis runs (hits ÷ lookups between runs)",
            samples=n,
        )
        for target, (ratio, n) in sorted(found.items())
    ]


def _window_seconds(session: Session, start: datetime, end: datetime) -> Figure:
    """How long maintenance inside a window takes: the runs that had a window to keep to."""
    durations = [
        float(ms or 0) / 1000
        for (ms,) in session.execute(
            select(RunRow.duration_ms).where(
                RunRow.window_end.is_not(None),
                RunRow.started_at >= start,
                RunRow.started_at < end,
                RunRow.state == "finished",
                RunRow.dry_run.is_(False),
                RunRow.duration_ms.is_not(None),
            )
        )
    ]
    overruns = session.scalar(
        select(func.count())
        .select_from(RunRow)
        .where(RunRow.stop_reason == "overrun", RunRow.started_at >= start, RunRow.started_at < end)
    )
    return Figure(
        name="maintenance.window_run_seconds",
        group="maintenance",
        title="Mean duration of runs inside a maintenance window",
        value=mean(durations),
        unit="s",
        how=f"mean over {len(durations)} runs in a window; {overruns or 0} stopped at their window's end",
        samples=len(durations),
    )


def _findings(session: Session, start: datetime, end: datetime) -> list[Figure]:
    """Security findings: new ones in the period, and those open at its end (each target's last scan)."""
    rows = session.execute(
        select(RunRow.task, RunRow.target, RunRow.metrics)
        .where(
            RunRow.kind == "security-scan",
            RunRow.started_at >= start,
            RunRow.started_at < end,
            RunRow.state == "finished",
            RunRow.dry_run.is_(False),
        )
        .order_by(RunRow.started_at)
    ).all()
    new = sum(float((m or {}).get("findings_new", 0)) for _, _, m in rows)
    last = {(task, target): m or {} for task, target, m in rows}
    open_ = sum(float(m.get("findings_open", 0)) for m in last.values())
    critical = sum(float(m.get("critical", 0)) for m in last.values())
    scans = f"{len(rows)} security-scan runs of {len(last)} tasks and targets"
    return [
        Figure(
            name="security.findings_new",
            group="security",
            title="New security findings",
            value=new if rows else None,
            unit="count",
            how=f"findings_new summed over {scans}",
            samples=len(rows),
        ),
        Figure(
            name="security.findings_open",
            group="security",
            title="Security findings open at the end of the period",
            value=open_ if rows else None,
            unit="count",
            how=f"findings_open of each task and target's last scan ({scans}); {critical:.0f} critical",
            samples=len(last),
            target=0.0,
            better="lower",
        ),
    ]
