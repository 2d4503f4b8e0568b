"""The SLOs as KPI figures: ``slo.<name>.budget_remaining`` and ``slo.<name>.burn_rate.<window>``.

Each SLO is measured over its own window ending at the report's end, whatever the report's period.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from maintd.kpi.model import Figure
from maintd.slo.budget import SloStatus
from maintd.slo.stored import statuses


def slo_figures(session: Session, end: datetime) -> list[Figure]:
    return [f for status in statuses(session, end) for f in _figures(status)]


def _figures(s: SloStatus) -> list[Figure]:
    b = s.budget
    figures = [
        Figure(
            name=f"slo.{s.name}.budget_remaining",
            group="availability",
            title=f"Error budget left: {s.name} ({s.objective:g}% of {s.target} over {s.window})",
            value=b.remaining_percent,
            unit="%",
            how=(
                f"({b.allowed_seconds:.0f} s allowed = {100 - s.objective:.4g}% of {s.window} - "
                f"{b.consumed_seconds:.0f} s down) / {b.allowed_seconds:.0f} s, from {s.runs} probe runs "
                f"in the {s.window} before the period's end"
            ),
            samples=s.runs,
            target=0.0,
            better="higher",
        )
    ]
    for burn in s.burn_rates:
        observed = burn.up_seconds + burn.down_seconds
        figures.append(
            Figure(
                name=f"slo.{s.name}.burn_rate.{burn.window}",
                group="availability",
                title=f"Error budget burn rate over {burn.window}: {s.name}",
                value=None if burn.rate is None else round(burn.rate, 4),
                unit="x",
                how=(
                    f"({burn.down_seconds:.0f} s down / {observed:.0f} s observed in the last {burn.window}) "
                    f"/ {100 - s.objective:.4g}%: 1x spends the budget in exactly {s.window}"
                ),
                samples=s.runs,
            )
        )
    return figures
