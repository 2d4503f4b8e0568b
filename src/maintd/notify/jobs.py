"""A claimed notification (``Job``), an attempt's ``Outcome``, the statements claiming and finishing rows."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, bindparam, insert, literal_column, or_, select, update
from sqlalchemy.sql.elements import BindParameter

from maintd.notify.message import Message
from maintd.notify.outbox import FAILED, PENDING
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
# cost more CPU than running it (~0.2 ms each, several per page). They are on the tables and
# run on the session's connection (Core): through the ORM each cost ~0.1 ms more.
_TABLE: Table = NotificationRow.__table__  # type: ignore[assignment]
_C = _TABLE.c
_NOW: BindParameter[datetime] = bindparam("now")
_IDS: BindParameter[Any] = bindparam("ids", expanding=True)
_CLAIMABLE = (
    _C.status == literal_column(f"'{PENDING}'"),  # as IS_PENDING, for the partial index
    _C.due_at <= _NOW,
    or_(_C.lease_until.is_(None), _C.lease_until < _NOW),
)
_CANDIDATE = select(_C.id).where(*_CLAIMABLE).order_by(_C.due_at).limit(bindparam("limit"))
# On PostgreSQL concurrent claimers pick different rows instead of queueing on the same locks.
CANDIDATES = {False: _CANDIDATE, True: _CANDIDATE.with_for_update(skip_locked=True)}
# The UPDATE returns the rows it leased, whole: what to send comes with the claim.
LEASE_ROWS = (
    update(_TABLE).where(_C.id.in_(_IDS), *_CLAIMABLE).values(lease_until=bindparam("lease")).returning(*_C)
)
UNREADABLE = (
    update(_TABLE)
    .where(_C.id == bindparam("id_"))
    .values(status=FAILED, lease_until=None, last_error=bindparam("error"))
)
ATTEMPT = insert(cast(Table, NotificationAttemptRow.__table__))
_FINISH: dict[tuple[str, ...], Any] = {}


def finish(keys: tuple[str, ...]) -> Any:
    """The UPDATE writing a row's next ``keys`` (and freeing its lease) if the lease is still ours."""
    if keys not in _FINISH:
        _FINISH[keys] = (
            update(_TABLE)
            .where(_C.id == bindparam("id_"), _C.status == PENDING, _C.lease_until == bindparam("lease"))
            .values(lease_until=None, **{k: bindparam(f"v_{k}") for k in keys})
        )
    return _FINISH[keys]


def job_of(row: Any, lease_until: datetime) -> Job:
    """A leased row (a ``NotificationRow`` or a result row of its columns) as a job."""
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
