"""Database timers: something due at a time (an escalation step, a handoff report), fired exactly once.

A timer is a row keyed (kind, subject, step); scheduling the same key again is a
no-op. Firing claims the row with a conditional update (``... WHERE id = :id AND
fired_at IS NULL AND cancelled_at IS NULL``) and runs the kind's handler in the
same transaction, so the handler's effects (queued notifications, events) commit
together with the claim or not at all: across restarts and across several maintd
processes on one database, each timer's effects happen once.

On PostgreSQL a batch is picked with ``FOR UPDATE SKIP LOCKED``: two processes
firing at once take different rows instead of queueing behind each other's locks.
SQLite's writers are serialised already (``BEGIN IMMEDIATE``).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Table, bindparam, func, select, update
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import BindParameter

from maintd.store.db import dialect_insert, rowcount
from maintd.store.events import SYSTEM, Event, append
from maintd.store.models import TimerRow

log = logging.getLogger(__name__)

BATCH = 500  # timers per fire_due call; the rest wait for the next call
RETRY_FIRST = timedelta(seconds=30)  # a handler that raised is tried again after this, doubling
RETRY_MAX = timedelta(minutes=10)

Handler = Callable[[Session, TimerRow, datetime], None]
"""Does what a timer of one kind is for, in the firing transaction; raising undoes its effects.

Its effects must be writes in that session (queue a notification, append an event): a handler
may run again for the same timer when another timer of its batch fails (see ``fire_due``)."""


@dataclass(frozen=True)
class Fired:
    id: int
    kind: str
    subject: str
    step: str
    due_at: datetime
    fired_at: datetime
    error: str | None = None  # the handler raised: the timer is pending again, retried later

    @property
    def late_seconds(self) -> float:
        return (self.fired_at - self.due_at).total_seconds()


def _pending() -> Any:
    return TimerRow.fired_at.is_(None) & TimerRow.cancelled_at.is_(None)


# Statements built once, values bound at execution: building a statement and its cache key
# cost more CPU than running it (~0.2 ms each, several per escalation step).
_KINDS: BindParameter[Any] = bindparam("kinds", expanding=True)
_IDS: BindParameter[Any] = bindparam("ids", expanding=True)
# The firing path's statements are on the table and run on the session's connection (Core):
# through the ORM each cost ~0.1 ms more, several per escalation step.
_TABLE: Table = TimerRow.__table__  # type: ignore[assignment]
_C = _TABLE.c
_PENDING_C = _C.fired_at.is_(None) & _C.cancelled_at.is_(None)
_CLAIM_BATCH = (
    update(_TABLE)
    .where(_C.id.in_(_IDS), _PENDING_C)
    .values(fired_at=bindparam("now"), fired_by=bindparam("owner"))
    .returning(*_C)
)
_UNCLAIM = update(_TABLE).where(_C.id.in_(_IDS)).values(fired_at=None, fired_by=None)
_NEXT_DUE_C = select(func.min(_C.due_at)).where(_PENDING_C)
_NEXT_DUE_OF_C = _NEXT_DUE_C.where(_C.kind.in_(_KINDS))
_INSERTS: dict[str, Any] = {}


def _due_stmt(columns: Any, *, kinds: bool, lock: bool) -> Any:
    stmt = (
        select(columns.id)
        .where(columns.fired_at.is_(None), columns.cancelled_at.is_(None), columns.due_at <= bindparam("now"))
        .order_by(columns.due_at, columns.id)
        .limit(bindparam("limit"))
    )
    if kinds:
        stmt = stmt.where(columns.kind.in_(_KINDS))
    return stmt.with_for_update(skip_locked=True) if lock else stmt


_DUE = {
    (kinds, lock): _due_stmt(TimerRow, kinds=kinds, lock=lock)
    for kinds in (False, True)
    for lock in (False, True)
}
_DUE_C = {
    (kinds, lock): _due_stmt(_C, kinds=kinds, lock=lock) for kinds in (False, True) for lock in (False, True)
}


def _insert(session: Session) -> Any:
    """``INSERT ... ON CONFLICT DO NOTHING RETURNING`` the id and key of each timer added, for the
    session's dialect."""
    name = session.get_bind().dialect.name
    if name not in _INSERTS:
        insert = dialect_insert(session)(_TABLE).on_conflict_do_nothing()
        _INSERTS[name] = insert.returning(_C.id, _C.kind, _C.subject, _C.step)
    return _INSERTS[name]


@dataclass
class InPlace:
    """Timers of ``kinds`` a block schedules due by ``now``: inserted already claimed by ``owner``."""

    owner: str
    kinds: Collection[str]
    now: datetime
    rows: list[TimerRow] = field(default_factory=list)  # claimed: the caller must fire them


_IN_PLACE = "maintd.timers.in_place"


@contextlib.contextmanager
def claiming_in_place(
    session: Session, *, owner: str, kinds: Collection[str], now: datetime
) -> Iterator[list[TimerRow]]:
    """Within the block, a timer of ``kinds`` scheduled due by ``now`` is inserted already fired by
    ``owner`` (the conditional claim, the SELECT of due timers and the UPDATE spared): the list
    yielded holds those rows, which the caller must then fire in this same transaction, or put
    back with ``unclaim``. Either way the insert and what its firing does commit together or not
    at all, so each such timer still fires exactly once.
    """
    claimed = InPlace(owner[:128], kinds, now)
    session.info[_IN_PLACE] = claimed
    try:
        yield claimed.rows
    finally:
        session.info.pop(_IN_PLACE, None)


def unclaim(session: Session, rows: list[TimerRow]) -> None:
    """Pending again, as if never fired (``claiming_in_place`` rows whose firing failed)."""
    session.connection().execute(_UNCLAIM, {"ids": [t.id for t in rows]})


@dataclass(frozen=True)
class NewTimer:
    kind: str
    subject: str
    step: str
    due_at: datetime
    payload: dict[str, Any]


def schedule(
    session: Session,
    *,
    kind: str,
    subject: str,
    step: str,
    due_at: datetime,
    payload: dict[str, Any],
    now: datetime,
) -> bool:
    """Add a timer unless one with that key exists (fired, cancelled or pending); True when added."""
    (added,) = schedule_all(session, [NewTimer(kind, subject, step, due_at, payload)], now=now)
    return added


def schedule_all(session: Session, timers: Sequence[NewTimer], *, now: datetime) -> list[bool]:
    """``schedule`` for each of ``timers`` in one INSERT (an escalation policy's steps: one
    statement, not one a step); for each, whether it was added."""
    in_place: InPlace | None = session.info.get(_IN_PLACE)
    rows = []
    for timer in timers:
        values = {
            "kind": timer.kind,
            "subject": timer.subject,
            "step": timer.step,
            "due_at": timer.due_at,
            "payload": timer.payload,
            "created_at": now,
            "fired_at": None,
            "fired_by": None,
        }
        if in_place is not None and timer.due_at <= in_place.now and timer.kind in in_place.kinds:
            values.update(fired_at=in_place.now, fired_by=in_place.owner)
        rows.append(values)
    if not rows:
        return []
    # RETURNING, not rowcount: with it (which SQLAlchemy adds for the key anyway) psycopg reports -1.
    # No pending ORM object is flushed first (a timer refers to nothing by key).
    added = {(r.kind, r.subject, r.step): r.id for r in session.connection().execute(_insert(session), rows)}
    for values in rows:
        found = added.get((values["kind"], values["subject"], values["step"]))
        if found is not None and in_place is not None and values["fired_by"] is not None:
            in_place.rows.append(TimerRow(id=found, cancelled_at=None, **values))
    return [(v["kind"], v["subject"], v["step"]) in added for v in rows]


def next_due_at(session: Session, *, kinds: list[str] | None = None) -> datetime | None:
    """The earliest due time of a pending timer (of ``kinds``): one MIN over the partial index."""
    # On the session's connection: a tick reads it after every alert; the ORM added ~0.1 ms.
    if kinds is None:
        found: datetime | None = session.connection().scalar(_NEXT_DUE_C)
    else:
        found = session.connection().scalar(_NEXT_DUE_OF_C, {"kinds": kinds})
    return found


def due(
    session: Session, now: datetime, *, limit: int = BATCH, lock: bool = False, kinds: list[str] | None = None
) -> list[int]:
    """Ids of pending timers (of ``kinds``) due at ``now``, earliest first.

    ``lock`` (PostgreSQL): lock them for this transaction, skipping rows another
    transaction holds, which are being fired by someone else right now.
    """
    lock = lock and session.get_bind().dialect.name == "postgresql"
    params: dict[str, Any] = {"now": now, "limit": limit}
    if kinds is not None:
        params["kinds"] = kinds
    return list(session.scalars(_DUE[(kinds is not None, lock)], params))


def claim(session: Session, timer_id: int, now: datetime, owner: str) -> bool:
    """Mark the timer fired by ``owner`` unless it is fired or cancelled already; True when this call did."""
    # The WHERE is checked again by the UPDATE itself: the id may come from a stale list. On
    # PostgreSQL a second concurrent UPDATE waits for the first to commit, re-checks, changes nothing.
    result = session.execute(
        update(TimerRow)
        .where(TimerRow.id == timer_id, _pending())
        .values(fired_at=now, fired_by=owner[:128])
        .execution_options(synchronize_session=False)
    )
    return rowcount(result) == 1


def cancel(session: Session, *, subject: str, kind: str, now: datetime) -> int:
    """Cancel the subject's pending timers of ``kind``; how many were cancelled."""
    result = session.execute(
        update(TimerRow)
        .where(TimerRow.subject == subject, TimerRow.kind == kind, _pending())
        .values(cancelled_at=now)
        .execution_options(synchronize_session=False)
    )
    return rowcount(result)


def pending(session: Session, *, subject: str, kind: str) -> list[TimerRow]:
    """The subject's pending timers of ``kind``, earliest first."""
    return list(
        session.scalars(
            select(TimerRow)
            .where(TimerRow.subject == subject, TimerRow.kind == kind, _pending())
            .order_by(TimerRow.due_at, TimerRow.id)
        )
    )


def of_subject(session: Session, subject: str) -> list[TimerRow]:
    """Every timer of the subject, whatever became of it, by due time."""
    return list(
        session.scalars(
            select(TimerRow).where(TimerRow.subject == subject).order_by(TimerRow.due_at, TimerRow.id)
        )
    )


def overdue(session: Session, now: datetime, *, by: timedelta, kind: str | None = None) -> list[TimerRow]:
    """Pending timers whose due time passed more than ``by`` ago, earliest first (at most 100)."""
    stmt = select(TimerRow).where(_pending(), TimerRow.due_at < now - by)
    if kind is not None:
        stmt = stmt.where(TimerRow.kind == kind)
    return list(session.scalars(stmt.order_by(TimerRow.due_at, TimerRow.id).limit(100)))


def fire_due(
    session: Session, now: datetime, *, owner: str, handlers: Mapping[str, Handler], limit: int = BATCH
) -> list[Fired]:
    """Claim and fire the timers due at ``now`` (up to ``limit``); the caller commits.

    The batch's handlers run in one savepoint; when one raises, the savepoint is undone
    and they run again one savepoint each, so only the failing timers are undone: those
    go back to pending with a later due time (a broken timer cannot spin the loop) and
    the rest of the batch goes on. Only timers of the handlers' kinds are fired.
    """
    session.flush()  # handlers read what the transaction added (an alert's new incident) by the ORM
    connection = session.connection()
    lock = connection.dialect.name == "postgresql"
    params = {"now": now, "limit": limit, "kinds": list(handlers)}
    ids = list(connection.execute(_DUE_C[(True, lock)], params).scalars())
    if not ids:
        return []
    # One conditional UPDATE for the batch: the rows it returns are this transaction's to fire
    # (handed to the handlers as TimerRow objects outside the session: they only read them).
    claimed = connection.execute(_CLAIM_BATCH, {"ids": ids, "now": now, "owner": owner[:128]})
    rows = sorted((TimerRow(**row._mapping) for row in claimed), key=lambda t: (t.due_at, t.id))
    return fire_claimed(session, rows, now, handlers)


def fire_claimed(
    session: Session, rows: list[TimerRow], now: datetime, handlers: Mapping[str, Handler]
) -> list[Fired]:
    """Run the handlers of timers this transaction claimed (see ``fire_due``); the caller commits."""
    errors: dict[int, str | None] = {}
    try:
        with session.begin_nested():  # one savepoint for the batch: the common case, no failure
            for timer in rows:
                handlers[timer.kind](session, timer, now)
    except Exception:
        errors = {timer.id: _run(session, handlers[timer.kind], timer, now) for timer in rows}
    return [Fired(t.id, t.kind, t.subject, t.step, t.due_at, now, errors.get(t.id)) for t in rows]


def _run(session: Session, handler: Handler, timer: TimerRow, now: datetime) -> str | None:
    try:
        with session.begin_nested():
            handler(session, timer, now)
        return None
    except Exception as exc:
        log.exception("timer %s %s %s failed; retrying later", timer.kind, timer.subject, timer.step)
        error = f"{type(exc).__name__}: {exc}"[:500]
        _retry_later(session, timer, now, error)
        return error


def _retry_later(session: Session, timer: TimerRow, now: datetime, error: str) -> None:
    failures = int(timer.payload.get("failures", 0)) + 1
    delay = min(RETRY_FIRST * 2 ** (failures - 1), RETRY_MAX)
    payload = {**timer.payload, "failures": failures, "error": error}
    payload.setdefault("first_due", timer.due_at.isoformat())
    session.execute(
        update(TimerRow)
        .where(TimerRow.id == timer.id)
        .values(fired_at=None, fired_by=None, due_at=now + delay, payload=payload)
        .execution_options(synchronize_session=False)
    )
    append(
        session,
        Event(
            "timer.failed",
            timer.subject,
            now,
            SYSTEM,
            {"kind": timer.kind, "step": timer.step, "error": error, "retry_at": (now + delay).isoformat()},
        ),
    )
