"""Integrations: where alerts come in from. Each has a name, a wire format and a secret key.

The key is shown once at creation; only its SHA-256 is stored, as for API tokens.
Keys are 32 hex digits (128 random bits), the shape of a PagerDuty routing key,
so PagerDuty clients that check the length accept them.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from maintd.auth import hash_token
from maintd.store.db import rowcount
from maintd.store.events import Event, append
from maintd.store.models import IntegrationRow

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")


class IntegrationKind(StrEnum):
    """The wire format an integration's senders speak."""

    native = "native"  # POST /api/v1/alerts with the key as bearer token
    alertmanager = "alertmanager"  # POST /integrations/alertmanager/KEY
    pagerduty = "pagerduty"  # POST /v2/enqueue with the key as routing_key


class IntegrationError(Exception):
    """A request about integrations that cannot be done; the message says why."""


@dataclass(frozen=True)
class Integration:
    name: str
    kind: IntegrationKind

    @property
    def actor(self) -> str:
        return f"integration:{self.name}"


def new_key() -> str:
    return secrets.token_hex(16)


def create_integration(
    session: Session, *, name: str, kind: IntegrationKind, now: datetime, actor: str
) -> str:
    """Create an integration and return its key; this is the only time the key exists outside the caller."""
    if not _NAME.match(name):
        raise IntegrationError(
            f"{name!r} is not a usable name: 1-63 letters, digits, '_', '.' or '-', "
            "starting with a letter or digit"
        )
    key = new_key()
    session.add(IntegrationRow(name=name, kind=kind.value, key_hash=hash_token(key), created_at=now))
    try:
        session.flush()
    except IntegrityError:
        raise IntegrationError(f"an integration named {name!r} already exists") from None
    append(session, Event("integration.created", f"integration:{name}", now, actor, {"kind": kind.value}))
    return key


def disable_integration(session: Session, *, name: str, now: datetime, actor: str) -> None:
    """Refuse the integration's key from now on (its alerts stay)."""
    done = session.execute(
        update(IntegrationRow)
        .where(IntegrationRow.name == name, IntegrationRow.disabled_at.is_(None))
        .values(disabled_at=now)
    )
    if not rowcount(done):
        raise IntegrationError(f"no enabled integration named {name!r}")
    append(session, Event("integration.disabled", f"integration:{name}", now, actor, {}))


def list_integrations(session: Session) -> list[IntegrationRow]:
    return list(session.scalars(select(IntegrationRow).order_by(IntegrationRow.name)))


def find_integration(session: Session, key: str) -> Integration | None:
    """The enabled integration with this key, or None (unknown and disabled keys look the same)."""
    row = session.scalar(select(IntegrationRow).where(IntegrationRow.key_hash == hash_token(key)))
    if row is None or row.disabled_at is not None:
        return None
    return Integration(row.name, IntegrationKind(row.kind))
