"""Signed, expiring tokens for links people follow without an API token.

An acknowledge link in a page, a calendar feed URL: the token carries what it
allows (``action``, ``subject``, ``actor``) and until when, signed with HMAC-SHA256
under a key kept in the database, so every maintd process sharing the database
signs and verifies alike. Keys are never rotated away silently: every stored key
verifies, the newest signs.

The newest key is remembered per database for ``KEY_TTL`` seconds (two links a page each
read it otherwise); a key added by another process signs here from then on at most that
much later, and what the older key signed meanwhile still verifies.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import threading
import time
import weakref
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from maintd.store.models import SigningKeyRow


class BadToken(ValueError):
    """The token is malformed, forged, for another purpose, or expired; the message says which."""


@dataclass(frozen=True)
class Grant:
    action: str  # ack, resolve, feed
    subject: str  # incident:42, schedule:ops, person:ann
    actor: str  # who the link was made for: person:ann
    expires_at: datetime | None


def sign(session: Session, grant: Grant) -> str:
    """A URL-safe token for ``grant`` (creates the signing key on first use; flushes only)."""
    key_id, secret = _newest_key(session)
    body = {"a": grant.action, "s": grant.subject, "u": grant.actor, "k": key_id}
    if grant.expires_at is not None:
        body["e"] = int(grant.expires_at.timestamp())
    payload = _b64(json.dumps(body, separators=(",", ":"), sort_keys=True).encode())
    return f"{payload}.{_b64(_mac(secret, payload))}"


def verify(session: Session, token: str, *, action: str, now: datetime) -> Grant:
    """The grant of a genuine, unexpired token for ``action``; BadToken otherwise."""
    payload, dot, signature = token.partition(".")
    if not dot or not payload or not signature:
        raise BadToken("malformed link token")
    try:
        body = json.loads(_unb64(payload))
        key_id = int(body["k"])
        given = _unb64(signature)
    except (ValueError, KeyError, TypeError) as exc:
        raise BadToken("malformed link token") from exc
    row = session.get(SigningKeyRow, key_id)
    if row is None or not hmac.compare_digest(_mac(row.secret, payload), given):
        raise BadToken("this link was not issued by this maintd")
    if body.get("a") != action:
        raise BadToken(f"this link is for {body.get('a')!r}, not {action!r}")
    expires_at = datetime.fromtimestamp(body["e"], UTC) if "e" in body else None
    if expires_at is not None and now >= expires_at:
        raise BadToken(f"this link expired at {expires_at.isoformat()}")
    return Grant(str(body["a"]), str(body["s"]), str(body["u"]), expires_at)


KEY_TTL = 10.0  # seconds the newest key is remembered (see the module docstring)
_CREATED = "maintd.signing.created"  # session.info: this transaction made a key (may roll back)
_keys: weakref.WeakKeyDictionary[Engine, tuple[float, int, str]] = weakref.WeakKeyDictionary()
_keys_lock = threading.Lock()


def _newest_key(session: Session) -> tuple[int, str]:
    bind = session.get_bind()
    engine = bind if isinstance(bind, Engine) else bind.engine
    with _keys_lock:
        found = _keys.get(engine)
    if found is not None and time.monotonic() < found[0]:
        return found[1], found[2]
    row = session.scalar(select(SigningKeyRow).order_by(SigningKeyRow.id.desc()).limit(1))
    if row is None:
        # Two processes racing here each add a key; both verify, the newer signs from then on.
        row = SigningKeyRow(secret=secrets.token_hex(32), created_at=datetime.now(UTC))
        session.add(row)
        session.flush()
        session.info[_CREATED] = True
    if not session.info.get(_CREATED):  # a key this transaction made is kept only once committed
        with _keys_lock:
            _keys[engine] = (time.monotonic() + KEY_TTL, row.id, row.secret)
    return row.id, row.secret


def _mac(secret: str, payload: str) -> bytes:
    return hmac.new(secret.encode(), payload.encode(), hashlib.sha256).digest()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
