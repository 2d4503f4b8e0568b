"""An SLO's error budget and burn rates, from the same time-weighted sweep as the availability KPI.

- allowed bad time = (100 - objective) % of the SLO's window (43.2 min for 99.9 % over 30 days);
- consumed = the seconds the target was down in the window; remaining = allowed - consumed;
- burn rate over a window W = (down / observed time in W) / (1 - objective): 1 spends the budget
  exactly over the SLO's window, 14.4 spends 2 % of a 30-day budget in one hour.

Unobserved time (before a target's first probe run) counts neither way, as in the KPI.
The alert pairs are the SRE workbook's for a 30-day 99.9 % objective: page at 14.4x over 1 h
(and 5 m) or 6x over 6 h (and 30 m), ticket at 1x over 3 d (and 6 h); both windows of a pair must
exceed their factor, so a burn that already stopped does not keep paging for an hour.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from pydantic import BaseModel
from sqlalchemy.orm import Session

from maintd.kpi.availability import Timeline, probe_timeline, uptime
from maintd.plan.slos import Slo
from maintd.plan.types import format_duration

AlertName = Literal["page", "ticket"]


@dataclass(frozen=True)
class Pair:
    alert: AlertName
    long: timedelta
    short: timedelta
    factor: float


PAIRS = (
    Pair("page", timedelta(hours=1), timedelta(minutes=5), 14.4),
    Pair("page", timedelta(hours=6), timedelta(minutes=30), 6.0),
    Pair("ticket", timedelta(days=3), timedelta(hours=6), 1.0),
)
WINDOWS = sorted({w for p in PAIRS for w in (p.long, p.short)})  # 5m, 30m, 1h, 6h, 3d
LONGEST = max(WINDOWS)


class Burn(BaseModel):
    window: str  # "1h"
    up_seconds: float
    down_seconds: float
    rate: float | None  # None: nothing observed in the window


class PairState(BaseModel):
    alert: AlertName
    long: str
    short: str
    factor: float
    long_rate: float | None
    short_rate: float | None
    burning: bool  # both windows above the factor


class Budget(BaseModel):
    allowed_seconds: float
    consumed_seconds: float
    remaining_seconds: float
    remaining_percent: float  # of the allowed bad time; negative once overspent


class SloStatus(BaseModel):
    name: str
    target: str
    objective: float
    window: str
    computed_at: datetime
    availability: float | None  # percent of observed time up in the window
    up_seconds: float
    down_seconds: float
    runs: int  # probe runs in the window
    budget: Budget
    burn_rates: list[Burn]
    pairs: list[PairState]
    page: bool
    ticket: bool


@dataclass(frozen=True)
class Observed:
    """One SLO's probe runs from ``start`` to ``end``: enough to sweep any window ending at ``end``."""

    slo: Slo
    start: datetime
    end: datetime
    statuses: dict[str, str]
    timeline: Timeline

    @classmethod
    def read(cls, session: Session, slo: Slo, end: datetime, span: timedelta) -> Observed:
        start = end - span
        statuses, timeline = probe_timeline(session, slo.target, start, end, tasks=tuple(slo.tasks))
        return cls(slo, start, end, statuses, timeline)

    def sweep(self, window: timedelta) -> tuple[float, float]:
        """Seconds up and down in the last ``window`` (at most the span read)."""
        return uptime(self.timeline, self.statuses, max(self.start, self.end - window), self.end)

    def burn(self, window: timedelta) -> Burn:
        up, down = self.sweep(window)
        observed = up + down
        allowed = (100.0 - self.slo.objective) / 100.0
        rate = (down / observed) / allowed if observed else None
        return Burn(window=format_duration(window), up_seconds=up, down_seconds=down, rate=rate)

    def pairs(self) -> list[PairState]:
        rates = {w: self.burn(w).rate for w in WINDOWS}
        return [
            PairState(
                alert=p.alert,
                long=format_duration(p.long),
                short=format_duration(p.short),
                factor=p.factor,
                long_rate=rates[p.long],
                short_rate=rates[p.short],
                burning=_above(rates[p.long], p.factor) and _above(rates[p.short], p.factor),
            )
            for p in PAIRS
        ]


def _above(rate: float | None, factor: float) -> bool:
    return rate is not None and rate > factor


def burning(session: Session, slo: Slo, now: datetime) -> list[PairState]:
    """The alert pairs' states at ``now``: reads only the longest alert window (3 days)."""
    return Observed.read(session, slo, now, LONGEST).pairs()


def evaluate(session: Session, slo: Slo, now: datetime) -> SloStatus:
    """The SLO's budget over its window and its burn rates, at ``now``."""
    seen = Observed.read(session, slo, now, max(slo.window, LONGEST))
    up, down = seen.sweep(slo.window)
    allowed = (100.0 - slo.objective) / 100.0 * slo.window.total_seconds()
    pairs = seen.pairs()
    in_window = sum(1 for at, _, _ in seen.timeline if at >= now - slo.window)
    return SloStatus(
        name=slo.name,
        target=slo.target,
        objective=slo.objective,
        window=format_duration(slo.window),
        computed_at=now,
        availability=round(100.0 * up / (up + down), 4) if up + down else None,
        up_seconds=up,
        down_seconds=down,
        runs=in_window,
        budget=Budget(
            allowed_seconds=allowed,
            consumed_seconds=down,
            remaining_seconds=allowed - down,
            remaining_percent=round(100.0 * (allowed - down) / allowed, 4),
        ),
        burn_rates=[seen.burn(w) for w in WINDOWS],
        pairs=pairs,
        page=any(p.burning for p in pairs if p.alert == "page"),
        ticket=any(p.burning for p in pairs if p.alert == "ticket"),
    )
