"""A claimed notification (``Job``), an attempt's ``Outcome``, the statements claiming and finishing rows."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, insert, literal_column, or_, select, update
from sqlalchemy.sql.elements import BindParameter

from maintd.notify.message import Message
from maintd.notify.outbox import PENDING
from maintd.notify.transport import TransportError
from maintd.plan.notify import NotifyRule
from maintd.store.models import NotificationAttemptRow, NotificationRow

# Written as a literal: SQLite uses the partial index (WHERE status = 'pending') only for the same
# term as written, not for a bound parameter; the log keeps every sent row, so that matters.
IS_PENDING = NotificationRow.status == literal_column(f"'{PENDING}'")


@dataclass(frozen=True)
class Job:
    """A claimed row: what to send where, and the lease that proves the claim."""

    id: int
    subject: str
    recipient: str
    state: str
    step: str
    channel: int
    rules: list[NotifyRule]
    attempts: int
    delivered: bool  # an earlier channel of this row was delivered
    title: str
    body: str
    lease_until: datetime

    @property
    def url(self) -> str:
        return self.rules[self.channel].url


@dataclass(frozen=True)
class Outcome:
    at: datetime
    seconds: float
    error: TransportError | None
    deferred: bool = False  # not tried: its endpoint holds as many sends as it may (bulkhead)


# Statements built once, values bound at execution: building a statement and its cache key
# cost more CPU than running it (~0.2 ms each, several per page).
_NOW: BindParameter[datetime] = bindparam("now")
_IDS: BindParameter[Any] = bindparam("ids", expanding=True)
_CLAIMABLE = (
    IS_PENDING,
    NotificationRow.due_at <= _NOW,
    or_(NotificationRow.lease_until.is_(None), NotificationRow.lease_until < _NOW),
)
_CANDIDATE = (
    select(NotificationRow.id).where(*_CLAIMABLE).order_by(NotificationRow.due_at).limit(bindparam("limit"))
)
# On PostgreSQL concurrent claimers pick different rows instead of queueing on the same locks.
CANDIDATES = {False: _CANDIDATE, True: _CANDIDATE.with_for_update(skip_locked=True)}
LEASE_ROWS = (
    update(NotificationRow)
    .where(NotificationRow.id.in_(_IDS), *_CLAIMABLE)
    .values(lease_until=bindparam("lease"))
    .returning(NotificationRow.id)
    .execution_options(synchronize_session=False)
)
CLAIMED = select(NotificationRow).where(NotificationRow.id.in_(_IDS))
ATTEMPT = insert(NotificationAttemptRow)
_FINISH: dict[tuple[str, ...], Any] = {}


def finish(keys: tuple[str, ...]) -> Any:
    """The UPDATE writing a row's next ``keys`` (and freeing its lease) if the lease is still ours."""
    if keys not in _FINISH:
        _FINISH[keys] = (
            update(NotificationRow)
            .where(
                NotificationRow.id == bindparam("id_"),
                NotificationRow.status == PENDING,
                NotificationRow.lease_until == bindparam("lease"),
            )
            .values(lease_until=None, **{k: bindparam(f"v_{k}") for k in keys})
            .execution_options(synchronize_session=False)
        )
    return _FINISH[keys]


def job_of(row: NotificationRow, lease_until: datetime) -> Job:
    message = Message.model_validate(row.message)
    return Job(
        id=row.id,
        subject=row.subject,
        recipient=row.recipient,
        state=row.state,
        step=row.step,
        channel=row.channel,
        rules=[NotifyRule.model_validate(rule) for rule in row.channels],
        attempts=row.attempts,
        delivered=row.sent_at is not None,
        title=message.heading(),
        body=message.body(),
        lease_until=lease_until,
    )
