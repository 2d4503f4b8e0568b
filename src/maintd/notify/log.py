"""Reading the notification log: what was queued for whom, where it went, every attempt.

URLs are shown redacted (credentials and tokens hidden), secret references as written.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.orm import Session

from maintd.notify.message import Message
from maintd.notify.outbox import CANCELLED, FAILED, PENDING, SENT
from maintd.notify.transport import redact
from maintd.store.models import NotificationAttemptRow, NotificationRow

STATUSES = (PENDING, SENT, FAILED, CANCELLED)
MAX_LIMIT = 1000


class ChannelView(BaseModel):
    url: str  # redacted
    after: str | None


class AttemptView(BaseModel):
    id: int
    channel: int
    target: str
    at: datetime
    duration_ms: float
    ok: bool
    permanent: bool
    error: str | None


class NotificationView(BaseModel):
    id: int
    subject: str
    incident_id: int | None
    recipient: str
    state: str
    step: str
    status: str
    channel: int
    target: str | None  # the channel in use, redacted
    attempts: int  # on the channel in use
    title: str
    created_at: datetime
    due_at: datetime
    sent_at: datetime | None
    last_error: str | None


class NotificationDetail(NotificationView):
    channels: list[ChannelView]
    history: list[AttemptView]  # every attempt on every channel, oldest first


def list_notifications(
    session: Session,
    *,
    incident_id: int | None = None,
    status: str | None = None,
    limit: int = 50,
    offset: int = 0,
) -> list[NotificationView]:
    """Newest first."""
    stmt = select(NotificationRow)
    if incident_id is not None:
        stmt = stmt.where(NotificationRow.incident_id == incident_id)
    if status is not None:
        stmt = stmt.where(NotificationRow.status == status)
    stmt = stmt.order_by(NotificationRow.id.desc()).offset(offset).limit(min(limit, MAX_LIMIT))
    return [notification_view(row) for row in session.scalars(stmt)]


def get_notification(session: Session, *, notification_id: int) -> NotificationDetail | None:
    row = session.get(NotificationRow, notification_id)
    if row is None:
        return None
    attempts = session.scalars(
        select(NotificationAttemptRow)
        .where(NotificationAttemptRow.notification_id == notification_id)
        .order_by(NotificationAttemptRow.id)
    )
    return NotificationDetail(
        **notification_view(row).model_dump(),
        channels=[ChannelView(url=redact(str(c.get("url", ""))), after=c.get("after")) for c in row.channels],
        history=[AttemptView.model_validate(a, from_attributes=True) for a in attempts],
    )


def notification_view(row: NotificationRow) -> NotificationView:
    current = row.channels[row.channel] if row.channel < len(row.channels) else None
    try:
        title = Message.model_validate(row.message).heading()
    except ValueError:
        title = "(unreadable message)"
    return NotificationView(
        id=row.id,
        subject=row.subject,
        incident_id=row.incident_id,
        recipient=row.recipient,
        state=row.state,
        step=row.step,
        status=row.status,
        channel=row.channel,
        target=redact(str(current.get("url", ""))) if current else None,
        attempts=row.attempts,
        title=title,
        created_at=row.created_at,
        due_at=row.due_at,
        sent_at=row.sent_at,
        last_error=row.last_error,
    )
