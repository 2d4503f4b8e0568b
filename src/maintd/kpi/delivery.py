"""Figures of what reached people: notifications delivered, post-mortem action items done on time,
documentation kept current and people trained (maintd.kpi.lifecycle)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from maintd.kpi.lifecycle import lifecycle_figures
from maintd.kpi.model import Figure, share
from maintd.notify.outbox import FAILED, SENT
from maintd.store.models import NotificationRow, PostmortemActionRow


def delivery_figures(session: Session, start: datetime, end: datetime) -> list[Figure]:
    counts = dict(
        session.execute(
            select(NotificationRow.status, func.count())
            .where(NotificationRow.created_at >= start, NotificationRow.created_at < end)
            .group_by(NotificationRow.status)
        ).all()
    )
    sent, failed = counts.get(SENT, 0), counts.get(FAILED, 0)
    on_time, late = _actions(session, start, end)
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
                f"{on_time} of {on_time + late} action items due in the period were done by the end of "
                "their due day (UTC); still open after it counts as late, cancelled does not count"
            ),
            samples=on_time + late,
            target=95.0,
            better="higher",
        ),
        *lifecycle_figures(session, start, end),  # documentation currency, training (maintd.lifecycle)
    ]


def _actions(session: Session, start: datetime, end: datetime) -> tuple[int, int]:
    """Post-mortem action items due on a day in the period whose due day is over by its end: (done by
    the end of their due day, late). Late includes those still open: an overdue item counts against
    the figure before anyone closes it. Cancelled ones do not count."""
    rows = session.execute(
        select(PostmortemActionRow.status, PostmortemActionRow.on_time).where(
            PostmortemActionRow.due_on >= start.date(),
            PostmortemActionRow.due_on < end.date(),  # so its due day has ended by ``end``
            PostmortemActionRow.status != "cancelled",
        )
    ).all()
    on_time = sum(1 for status, in_time in rows if status == "done" and in_time)
    return on_time, len(rows) - on_time
