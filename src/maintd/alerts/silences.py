"""Silences: label matchers with a time span; a matching new alert is stored but muted."""

from __future__ import annotations

import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from maintd.plan.incidents import Matcher
from maintd.store.events import Event, append
from maintd.store.models import SilenceRow

# Every change to a silence goes through this module and writes one of these events, so their
# count and newest id move whenever the silences do, whichever process changed them. The count
# also catches two changes committed out of id order (PostgreSQL hands ids out before commit).
_VERSION = text("SELECT count(*), max(id) FROM events WHERE kind IN ('silence.created', 'silence.expired')")
_CHANGED = "maintd.silences_changed"  # session.info: this session changed a silence itself


def active_silences(session: Session, now: datetime) -> Sequence[SilenceRow]:
    return session.scalars(
        select(SilenceRow)
        .where(SilenceRow.starts_at <= now, SilenceRow.ends_at > now)
        .order_by(SilenceRow.id)
    ).all()


Matchers = list[tuple[int, list[Matcher]]]  # (silence id, its matchers), in id order


@dataclass(frozen=True)
class _Loaded:
    version: tuple[int, int | None]
    at: datetime
    silences: list[tuple[int, list[Matcher], datetime, datetime]]  # id, matchers, start, end


_loaded: weakref.WeakKeyDictionary[object, _Loaded] = weakref.WeakKeyDictionary()


def active_matchers(session: Session, now: datetime) -> Matchers:
    """The matchers of the silences active at ``now``, read again only when a silence changed.

    Every ingest batch asks; reading and validating the silences each time cost about a seventh
    of a small batch's CPU. What is kept is every silence not ended when it was read (those still
    to start too), checked against one query of ``_VERSION`` per call. A session that changed a
    silence itself reads them directly: what it wrote may yet be rolled back.
    """
    if session.info.get(_CHANGED):
        return [(row.id, _parse(row)) for row in active_silences(session, now)]
    bind = session.get_bind()
    count, newest = session.execute(_VERSION).one()
    version = (int(count), newest)
    loaded = _loaded.get(bind)
    if loaded is None or loaded.version != version or now < loaded.at:
        rows = session.scalars(select(SilenceRow).where(SilenceRow.ends_at > now).order_by(SilenceRow.id))
        silences = [(row.id, _parse(row), row.starts_at, row.ends_at) for row in rows]
        loaded = _loaded[bind] = _Loaded(version, now, silences)
    return [(i, matchers) for i, matchers, start, end in loaded.silences if start <= now < end]


def _parse(row: SilenceRow) -> list[Matcher]:
    return [Matcher.model_validate(m) for m in row.matchers]


def silence_matching(silences: Sequence[SilenceRow], labels: dict[str, str]) -> SilenceRow | None:
    for silence in silences:
        matchers = [Matcher.model_validate(m) for m in silence.matchers]
        if matchers and all(m.matches(labels) for m in matchers):
            return silence
    return None


def create_silence(
    session: Session,
    *,
    matchers: list[Matcher],
    starts_at: datetime,
    ends_at: datetime,
    created_by: str,
    comment: str,
    now: datetime,
) -> SilenceRow:
    if not matchers:
        raise ValueError("a silence needs at least one matcher; an empty one would mute everything")
    if ends_at <= starts_at:
        raise ValueError("a silence must end after it starts")
    if not comment.strip():
        raise ValueError("say why: a silence needs a comment")
    row = SilenceRow(
        matchers=[m.model_dump() for m in matchers],
        starts_at=starts_at,
        ends_at=ends_at,
        created_by=created_by,
        comment=comment,
        created_at=now,
    )
    session.add(row)
    session.flush()
    session.info[_CHANGED] = True
    append(
        session,
        Event(
            "silence.created",
            f"silence:{row.id}",
            now,
            created_by,
            {"matchers": [str(m) for m in matchers], "ends_at": ends_at.isoformat(), "comment": comment},
        ),
    )
    return row


def expire_silence(session: Session, silence_id: int, *, now: datetime, actor: str) -> SilenceRow:
    row = session.get(SilenceRow, silence_id)
    if row is None:
        raise LookupError(f"no silence {silence_id}")
    if row.ends_at > now:
        session.info[_CHANGED] = True
        row.ends_at = now
        append(session, Event("silence.expired", f"silence:{row.id}", now, actor, {}))
    return row
