"""Who sends alerts: integration keys and API tokens, remembered for a second once found.

Every alert request names its sender, and at a few hundred requests a second the lookup (a
worker thread, a session, one indexed query) was a fifth of maintd's CPU per request. Keys
and tokens that were found are remembered for ``TTL``; unknown, disabled and revoked ones
never are, so a wrong key costs a lookup every time and a new key works at once. The price:
a key disabled or a token revoked by another process (the CLI, another maintd) still works
here for up to ``TTL``. ``forget`` drops everything at once for changes made in this process.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from fastapi import HTTPException
from starlette.concurrency import run_in_threadpool

from maintd.alerts.admission import NO_BEARER, UNKNOWN_TOKEN, role_refused
from maintd.alerts.integrations import Integration, find_integration
from maintd.auth import Principal, Role, authenticate, stamp
from maintd.clock import Clock
from maintd.remembered import Remembered
from maintd.store.db import Store
from maintd.store.outage import bounded

TTL = 1.0  # seconds a found key or token is trusted without asking the database again
TOUCH_EVERY = timedelta(minutes=1)  # as maintd.api.deps: a token's last-used stamp, once a minute


@dataclass
class _Token:
    principal: Principal
    last_used: datetime | None


class Senders:
    """Integration keys and API tokens of one app, looked up through a short positive cache."""

    def __init__(
        self, store: Store, clock: Clock, *, ttl: float = TTL, monotonic: Callable[[], float] = time.monotonic
    ) -> None:
        self._store = store
        self._clock = clock  # the domain's time: last-used stamps
        # The cache's time is real seconds (``monotonic``), whatever the domain clock says.
        self._keys: Remembered[Integration] = Remembered(ttl, monotonic)
        self._tokens: Remembered[_Token] = Remembered(ttl, monotonic)

    def forget(self) -> None:
        """Drop every remembered key and token: the next request of each asks the database."""
        self._keys.clear()
        self._tokens.clear()

    async def integration(self, key: str) -> Integration | None:
        """The enabled integration with this key, or None for an unknown or disabled key."""
        found = self._keys.get(key)
        if found is None:
            found = await bounded(run_in_threadpool(self._find_integration, key))
            self._keys.put(key, found)
        return found

    async def principal(self, authorization: str, needed: Role) -> Principal:
        """The bearer token's principal if its role allows ``needed``; HTTP 401 or 403 otherwise.

        The same answers, word for word, as ``maintd.api.deps.require``.
        """
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise HTTPException(401, NO_BEARER)
        token = token.strip()
        hit = self._tokens.get(token)
        if hit is None:
            found = await bounded(run_in_threadpool(self._authenticate, token))
            hit = _Token(*found) if found is not None else None
            self._tokens.put(token, hit)
            if hit is None:
                raise HTTPException(401, UNKNOWN_TOKEN)
        principal = hit.principal
        if not principal.role.allows(needed):
            raise HTTPException(403, role_refused(principal, needed))
        now = self._clock.now()
        if hit.last_used is None or now - hit.last_used > TOUCH_EVERY:
            hit.last_used = now
            await bounded(run_in_threadpool(self._touch, principal.name, now))
        return principal

    def _find_integration(self, key: str) -> Integration | None:
        with self._store.read() as session:
            return find_integration(session, key)

    def _authenticate(self, token: str) -> tuple[Principal, datetime | None] | None:
        with self._store.read() as session:
            return authenticate(session, token)

    def _touch(self, name: str, now: datetime) -> None:
        stamp(self._store, name, now)
