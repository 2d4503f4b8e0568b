"""A capacity review: every series' forecast, and a recommendation wherever one reaches its limit
within 12 months."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from maintd.capacity.forecast import Settings, forecast
from maintd.capacity.format import amount
from maintd.capacity.model import CapacityReport, Forecast, Recommendation
from maintd.capacity.series import load, split_suffix

MAX_HISTORY = timedelta(days=366 * 3)

# What to do about a series, by the kind of thing it measures.
ADVICE = {
    "used_bytes": "grow the volume or free space (retention, old backups, logs)",
    "used_percent": "grow the volume or free space (retention, old backups, logs)",
    "inode_percent": "find the directories with many small files, or move them to a volume with more inodes",
    "used_memory": "raise maxmemory (with the host's memory) or set an eviction policy and TTLs",
    "memory_percent": "raise maxmemory (with the host's memory) or set an eviction policy and TTLs",
    "connected_clients": "raise maxclients or pool the clients' connections",
    "clients_percent": "raise maxclients or pool the clients' connections",
    "connections": "raise max_connections or put a pooler (PgBouncer) in front",
    "connection_percent": "raise max_connections or put a pooler (PgBouncer) in front",
}


def review(
    session: Session,
    *,
    now: datetime,
    history: timedelta = timedelta(days=365),
    task: str | None = None,
    target: str | None = None,
    metric: str | None = None,
    limit: float | None = None,
    settings: Settings | None = None,
) -> CapacityReport:
    """Forecasts of the series in ``[now - history, now]``; ``limit`` overrides every series' own."""
    if history <= timedelta(0) or history > MAX_HISTORY:
        raise ValueError(f"history must be positive and at most {MAX_HISTORY.days} days, not {history}")
    settings = settings or Settings()
    since = now - history
    found = load(session, since=since, until=now + timedelta(seconds=1), task=task, target=target,
                 metric=metric)  # fmt: skip
    forecasts = []
    for series in found:
        if limit is not None:
            series.limit, series.limit_source = limit, "configured"
        forecasts.append(forecast(series, settings))
    recommendations = [r for r in map(recommend, forecasts) if r is not None]
    order = ("now", "3 months", "6 months", "12 months")
    recommendations.sort(key=lambda r: order.index(r.urgency))
    return CapacityReport(computed_at=now, since=since, step_days=settings.step_days, forecasts=forecasts,
                          recommendations=recommendations)  # fmt: skip


def recommend(f: Forecast) -> Recommendation | None:
    """One when the projection, or its interval's upper bound, reaches the limit within 12 months."""
    ex = f.exhaustion
    if ex is None or ex.earliest_days is None:
        return None
    days = ex.days if ex.days is not None else ex.earliest_days
    urgency = "now" if days <= 0 else "3 months" if days <= 91 else "6 months" if days <= 183 else "12 months"
    what = f"{f.series.metric} of {f.series.target} (task {f.series.task})"
    limit = f"its limit {amount(ex.limit, f.unit)} ({ex.limit_source})"
    if days <= 0:
        text = f"{what} is at {limit} now"
    elif ex.at is not None:
        text = f"{what} reaches {limit} around {ex.at:%Y-%m-%d} (in {ex.days:.0f} days"
        text += f", as early as {ex.earliest_at:%Y-%m-%d})" if ex.earliest_at is not None else ")"
    else:
        text = f"{what} may reach {limit} as early as {ex.earliest_at:%Y-%m-%d} (the interval's upper bound)"
    advice = ADVICE.get(split_suffix(f.series.metric)[0], "add capacity or reduce the load")
    return Recommendation(series=f.series, urgency=urgency, text=f"{text}: {advice}")
