"""API tokens and roles.

A token is shown once at creation; only its SHA-256 is stored (tokens are 256
random bits, so a fast hash is enough and lookups stay one indexed query).
"""

from __future__ import annotations

import logging
import secrets
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.orm import Session

from maintd.roles import PREFIX as PREFIX
from maintd.roles import Principal as Principal
from maintd.roles import Role as Role
from maintd.roles import hash_token as hash_token
from maintd.store.db import Store, StoreError, rowcount
from maintd.store.events import Event, append
from maintd.store.models import TokenRow
from maintd.store.outage import reason

log = logging.getLogger(__name__)


class TokenError(Exception):
    pass


def create_token(session: Session, *, name: str, role: Role, now: datetime, actor: str) -> str:
    """Create a token and return it; this is the only time its value exists outside the caller."""
    token = PREFIX + secrets.token_urlsafe(32)
    session.add(TokenRow(name=name, role=role.value, token_hash=hash_token(token), created_at=now))
    try:
        session.flush()
    except IntegrityError:
        raise TokenError(f"a token named {name!r} already exists") from None
    append(session, Event("token.created", f"token:{name}", now, actor, {"role": role.value}))
    return token


def revoke_token(session: Session, *, name: str, now: datetime, actor: str) -> None:
    done = session.execute(
        update(TokenRow).where(TokenRow.name == name, TokenRow.revoked_at.is_(None)).values(revoked_at=now)
    )
    if not rowcount(done):
        raise TokenError(f"no active token named {name!r}")
    append(session, Event("token.revoked", f"token:{name}", now, actor, {}))


def authenticate(session: Session, token: str) -> tuple[Principal, datetime | None] | None:
    """The token's principal and when it was last used, or None for an unknown or revoked token."""
    row = session.scalar(select(TokenRow).where(TokenRow.token_hash == hash_token(token)))
    if row is None or row.revoked_at is not None:
        return None
    return Principal(row.name, Role(row.role)), row.last_used_at


def touch(session: Session, name: str, now: datetime) -> None:
    session.execute(update(TokenRow).where(TokenRow.name == name).values(last_used_at=now))


def stamp(store: Store, name: str, now: datetime) -> None:
    """Record a token's last use in a transaction of its own. A database that reads but cannot
    write (a full disk, a read-only replica) loses the stamp, not the request it came with."""
    try:
        with store.write() as session:
            touch(session, name, now)
    except (DBAPIError, StoreError) as exc:
        log.warning("token %r: its last use was not recorded: %s", name, reason(exc))


def list_tokens(session: Session) -> list[TokenRow]:
    return list(session.scalars(select(TokenRow).order_by(TokenRow.name)))
