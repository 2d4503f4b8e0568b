"""Silences: label matchers with a time span; a matching new alert is stored but muted."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from maintd.plan.incidents import Matcher
from maintd.store.events import Event, append
from maintd.store.models import SilenceRow


def active_silences(session: Session, now: datetime) -> Sequence[SilenceRow]:
    return session.scalars(
        select(SilenceRow)
        .where(SilenceRow.starts_at <= now, SilenceRow.ends_at > now)
        .order_by(SilenceRow.id)
    ).all()


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
        row.ends_at = now
        append(session, Event("silence.expired", f"silence:{row.id}", now, actor, {}))
    return row
