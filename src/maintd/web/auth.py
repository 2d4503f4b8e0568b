"""Dashboard sessions: an API token pasted once becomes a signed, expiring session cookie.

The engine has no passwords; a person logs in with their API token. The cookie
holds a grant signed with the database's signing keys (maintd.signing), so every
maintd process sharing the database accepts it. It names the token and a random
session id, never the token itself. Each request re-reads the token (a revoked
token ends its sessions at once) and looks for the session's logout event (a
logged-out cookie replayed is refused).

CSRF: every form carries a token derived from the session cookie (SHA-256 of the
HttpOnly cookie, which another site can neither read nor guess), checked on every
POST; the cookie is SameSite=Strict as well. The login form, having no session
yet, uses a double-submit cookie of its own.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from maintd.auth import Principal, Role, authenticate, touch
from maintd.signing import BadToken, Grant, sign, verify
from maintd.store.events import Event, append
from maintd.store.models import EventRow, TokenRow

COOKIE = "maintd_session"
LOGIN_COOKIE = "maintd_login"  # the login form's double-submit value
ACTION = "web-session"  # the signed grant's action: an ack link's token is no session, nor the reverse
TTL = timedelta(hours=12)
LOGIN = "web.login"
LOGOUT = "web.logout"


@dataclass(frozen=True)
class WebSession:
    principal: Principal
    session_id: str
    csrf: str
    expires_at: datetime

    def may(self, role: Role) -> bool:
        return self.principal.role.allows(role)


def login(session: Session, token: str, *, now: datetime) -> tuple[str, WebSession] | None:
    """A new session's cookie value for a valid API token, or None (unknown or revoked). Flushes only."""
    found = authenticate(session, token.strip())
    if found is None:
        return None
    principal = found[0]
    session_id = secrets.token_urlsafe(16)
    expires_at = now + TTL
    cookie = sign(session, Grant(ACTION, f"token:{principal.name}", _subject(session_id), expires_at))
    touch(session, principal.name, now)
    append(session, Event(LOGIN, _subject(session_id), now, principal.actor, {"expires_at": str(expires_at)}))
    return cookie, WebSession(principal, session_id, csrf_for(cookie), expires_at)


def current(session: Session, cookie: str | None, *, now: datetime) -> WebSession | None:
    """The live session behind a cookie: genuine, unexpired, its token active, not logged out."""
    if not cookie:
        return None
    try:
        grant = verify(session, cookie, action=ACTION, now=now)
    except BadToken:
        return None
    name = grant.subject.removeprefix("token:")
    row = session.scalar(select(TokenRow).where(TokenRow.name == name))
    if row is None or row.revoked_at is not None or grant.expires_at is None:
        return None
    ended = session.scalar(
        select(EventRow.id).where(EventRow.subject == grant.actor, EventRow.kind == LOGOUT).limit(1)
    )
    if ended is not None:
        return None
    session_id = grant.actor.removeprefix("web-session:")
    return WebSession(Principal(row.name, Role(row.role)), session_id, csrf_for(cookie), grant.expires_at)


def logout(session: Session, web: WebSession, *, now: datetime) -> None:
    """The session ends everywhere: its cookie is refused from now on. Flushes only."""
    append(session, Event(LOGOUT, _subject(web.session_id), now, web.principal.actor, {}))


def csrf_for(cookie: str) -> str:
    digest = hashlib.sha256(b"maintd-csrf\x00" + cookie.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def same(given: str | None, expected: str | None) -> bool:
    """Constant-time comparison of a form's token with the expected one; empty never matches."""
    if not given or not expected:
        return False
    return hmac.compare_digest(given.encode(), expected.encode())


def new_login_nonce() -> str:
    return secrets.token_urlsafe(24)


def _subject(session_id: str) -> str:
    return f"web-session:{session_id}"
