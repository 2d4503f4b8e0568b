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
from maintd.auth import Principal, Role, authenticate, touch
from maintd.clock import Clock
from maintd.store.db import Store
from maintd.store.outage import bounded

TTL = 1.0  # seconds a found key or token is trusted without asking the database again
TOUCH_EVERY = timedelta(minutes=1)  # as maintd.api.deps: a token's last-used stamp, once a minute


@dataclass
class _Token:
    principal: Principal
    last_used: datetime | None
    expires: float


class Senders:
    """Integration keys and API tokens of one app, looked up through a short positive cache."""

    def __init__(
        self, store: Store, clock: Clock, *, ttl: float = TTL, monotonic: Callable[[], float] = time.monotonic
    ) -> None:
        self._store = store
        self._clock = clock  # the domain's time: last-used stamps
        self._ttl = ttl
        self._monotonic = monotonic  # the cache's time: real seconds, whatever the domain clock says
        self._keys: dict[str, tuple[Integration, float]] = {}
        self._tokens: dict[str, _Token] = {}

    def forget(self) -> None:
        """Drop every remembered key and token: the next request of each asks the database."""
        self._keys.clear()
        self._tokens.clear()

    async def integration(self, key: str) -> Integration | None:
        """The enabled integration with this key, or None for an unknown or disabled key."""
        hit = self._keys.get(key)
        if hit is not None and hit[1] > self._monotonic():
            return hit[0]
        found = await bounded(run_in_threadpool(self._find_integration, key))
        if found is None:
            self._keys.pop(key, None)
        else:
            self._keys[key] = (found, self._monotonic() + self._ttl)
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
        if hit is None or hit.expires <= self._monotonic():
            found = await bounded(run_in_threadpool(self._authenticate, token))
            if found is None:
                self._tokens.pop(token, None)
                raise HTTPException(401, UNKNOWN_TOKEN)
            hit = _Token(found[0], found[1], self._monotonic() + self._ttl)
            self._tokens[token] = hit
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
        with self._store.write() as session:
            touch(session, name, now)
