"""The seed's "auto-remediation success rate": of the playbook executions that ended in the period,
the share that succeeded (verified by the failing check run again), overall and per playbook.

Read from the ``remediation.executed`` events (dry runs write ``remediation.dry_run`` and do
not count; suppressed, denied and waiting decisions never executed).
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from maintd.kpi.model import Figure, share
from maintd.store.models import EventRow

EXECUTED = "remediation.executed"
TARGET = 90.0  # no seed figure: the seed's automation rate target, for a playbook's reliability


def remediation_figures(session: Session, start: datetime, end: datetime) -> list[Figure]:
    succeeded: Counter[str] = Counter()
    ended: Counter[str] = Counter()
    for (payload,) in session.execute(
        select(EventRow.payload).where(EventRow.kind == EXECUTED, EventRow.at >= start, EventRow.at < end)
    ):
        playbook = str((payload or {}).get("playbook", "?"))
        ended[playbook] += 1
        succeeded[playbook] += (payload or {}).get("outcome") == "success"
    total, ok = sum(ended.values()), sum(succeeded.values())
    figures = [
        _figure("remediation.success_rate", "Auto-remediation success rate", ok, total, "every playbook")
    ]
    figures += [
        _figure(
            f"remediation.success_rate.{name}",
            f"Auto-remediation success rate: {name}",
            succeeded[name],
            ended[name],
            f"playbook {name}",
        )
        for name in sorted(ended)
    ]
    return figures


def _figure(name: str, title: str, ok: int, total: int, whose: str) -> Figure:
    return Figure(
        name=name,
        group="incidents",  # beside MTTR: how much of the response was automatic
        title=title,
        value=share(ok, total),
        unit="%",
        how=f"{ok} of {total} executions of {whose} that ended in the period succeeded (verified)",
        samples=total,
        target=TARGET,
        better="higher",
    )
