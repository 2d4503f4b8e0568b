"""Burning SLOs as alerts on the native alert path (``source="slo"``).

Two alerts per SLO, identified by their labels: ``slo_alert=page`` (severity critical) fires while
either page pair burns, ``slo_alert=ticket`` (severity warning) while the ticket pair burns. Each
is delivered only when it changes: firing when it starts burning, resolved when it stops.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from maintd.alerts.fingerprint import fingerprint
from maintd.alerts.model import AlertIn, AlertStatus, Severity
from maintd.plan.models import Plan
from maintd.plan.slos import Slo
from maintd.plan.types import format_duration
from maintd.slo.budget import AlertName, PairState, burning
from maintd.store.models import AlertRow

SEVERITY: dict[AlertName, Severity] = {"page": Severity.critical, "ticket": Severity.warning}


def labels_of(plan: Plan, slo: Slo, alert: AlertName) -> dict[str, str]:
    target = next((t for t in plan.targets if t.name == slo.target), None)
    return {
        **(target.labels if target is not None else {}),
        "alertname": "SLOBurnRate",
        "slo": slo.name,
        "slo_alert": alert,
        "target": slo.target,
    }


def slo_alerts(session: Session, plan: Plan, now: datetime) -> list[AlertIn]:
    """The deliveries that bring the stored alerts in line with the SLOs' burn at ``now``."""
    out = []
    for slo in plan.slos:
        pairs = burning(session, slo, now)
        for alert in ("page", "ticket"):
            mine = [p for p in pairs if p.alert == alert]
            on = any(p.burning for p in mine)
            labels = labels_of(plan, slo, alert)
            if on == _firing(session, fingerprint(labels)):
                continue
            out.append(_delivery(slo, alert, labels, mine, on, now))
    return out


def _firing(session: Session, identity: str) -> bool:
    row = session.scalar(
        select(AlertRow.id).where(AlertRow.dedup_key == identity, AlertRow.status == "firing").limit(1)
    )
    return row is not None


def _delivery(
    slo: Slo, alert: AlertName, labels: dict[str, str], pairs: list[PairState], on: bool, now: datetime
) -> AlertIn:
    rates = "; ".join(
        f"{_x(p.long_rate)} over {p.long} and {_x(p.short_rate)} over {p.short} (threshold {p.factor:g}x)"
        for p in pairs
    )
    what = "burning its error budget" if on else "no longer burning its error budget"
    return AlertIn(
        source="slo",
        labels=labels,
        annotations={
            "burn_rates": rates,
            "objective": f"{slo.objective:g}% over {format_duration(slo.window)}",
        },
        status=AlertStatus.firing if on else AlertStatus.resolved,
        severity=SEVERITY[alert],
        summary=f"SLO {slo.name} ({slo.target}) is {what} ({alert}): {rates}"[:300],
        starts_at=now,
        ends_at=None if on else now,
    )


def _x(rate: float | None) -> str:
    return "-" if rate is None else f"{rate:.1f}x"
