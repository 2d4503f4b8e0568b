"""Acknowledge and resolve links for pages: signed for one person and one incident, expiring.

The token is the whole credential, so whoever holds the link may act as that
person on that incident until it expires: pages go to the person's own
channels, and a link lives a day by default.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from maintd.signing import Grant, sign

DEFAULT_TTL = timedelta(hours=24)
ACK, RESOLVE = "ack", "resolve"
PERSON = "person:"


def incident_links(
    session: Session,
    *,
    incident_id: int,
    person: str,
    base_url: str,
    now: datetime,
    ttl: timedelta = DEFAULT_TTL,
) -> tuple[str, str]:
    """``(ack_url, resolve_url)`` for ``person`` (a plan person's name) on the incident; flushes only."""
    subject, actor = f"incident:{incident_id}", f"{PERSON}{person}"
    expires_at = now + ttl
    base = base_url.rstrip("/")
    ack = sign(session, Grant(ACK, subject, actor, expires_at))
    resolve = sign(session, Grant(RESOLVE, subject, actor, expires_at))
    return f"{base}/ack/{ack}", f"{base}/resolve/{resolve}"
