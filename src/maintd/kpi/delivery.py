"""Figures of what reached people: notifications delivered, post-mortem actions done on time,
and the seed KPIs maintd does not track yet (shown, with why, rather than left out)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from maintd.kpi.model import Figure, share
from maintd.notify.outbox import FAILED, SENT
from maintd.store.models import EventRow, NotificationRow

POSTMORTEM_ACTION_DONE = "postmortem.action.completed"


def delivery_figures(session: Session, start: datetime, end: datetime) -> list[Figure]:
    counts = dict(
        session.execute(
            select(NotificationRow.status, func.count())
            .where(NotificationRow.created_at >= start, NotificationRow.created_at < end)
            .group_by(NotificationRow.status)
        ).all()
    )
    sent, failed = counts.get(SENT, 0), counts.get(FAILED, 0)
    on_time = late = 0
    for (payload,) in session.execute(
        select(EventRow.payload).where(
            EventRow.kind == POSTMORTEM_ACTION_DONE, EventRow.at >= start, EventRow.at < end
        )
    ):
        if (payload or {}).get("on_time"):
            on_time += 1
        else:
            late += 1
    return [
        Figure(
            name="delivery.notifications_delivered",
            group="delivery",
            title="Notifications delivered",
            value=share(sent, sent + failed),
            unit="%",
            how=f"{sent} sent of {sent + failed} finished (failed on every channel: {failed})",
            samples=sent + failed,
            target=99.0,
            better="higher",
        ),
        Figure(
            name="seed.postmortem_actions_on_time",
            group="seed",
            title="Post-mortem action items completed on time",
            value=share(on_time, on_time + late),
            unit="%",
            how=(
                f"{on_time} of {on_time + late} action items completed in the period "
                "were done by their due date"
            ),
            samples=on_time + late,
            target=95.0,
            better="higher",
        ),
        _untracked("seed.documentation_currency", "Documentation updated within 48 hours", 100.0),
        _untracked("seed.training_completion", "Team trained in the last year", 100.0),
    ]


def _untracked(name: str, title: str, target: float) -> Figure:
    return Figure(
        name=name,
        group="seed",
        title=title,
        value=None,
        unit="%",
        how="not tracked yet: the documentation registry and training matrix are not built",
        samples=0,
        target=target,
        better="higher",
    )
