"""Who sends alerts to the intake: integration keys and API tokens, as maintd.api.senders finds
them (the same tables, the same hashes, found ones remembered for ``TTL``), with raw SQL in a
thread of their own so a slow database never stalls the event loop.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import TypeVar

from maintd.alerts import admission
from maintd.clock import Clock
from maintd.intake.database import Database, Found, TokenFound, Unavailable
from maintd.intake.journal import DEADLINE
from maintd.remembered import Remembered
from maintd.roles import Principal, Role, hash_token

TTL = 1.0  # as maintd.api.senders: a key disabled or a token revoked elsewhere works here <= 1 s more
TOUCH_EVERY = timedelta(minutes=1)  # a token's last-used stamp, as maintd.api.deps
T = TypeVar("T")


class Senders:
    """Integration keys and API tokens, looked up through a short positive cache."""

    def __init__(
        self,
        database: Database,
        clock: Clock,
        *,
        ttl: float = TTL,
        deadline: float = DEADLINE,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._database = database
        self._clock = clock
        self._deadline = deadline
        self._keys: Remembered[Found] = Remembered(ttl, monotonic)
        self._tokens: Remembered[Principal] = Remembered(ttl, monotonic)
        self._last_used: dict[str, datetime | None] = {}
        # One thread and one connection: look-ups are rare (once a second per sender at most).
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="intake-lookup")

    async def integration(self, key: str) -> Found | None:
        """The enabled integration with this key, or None (Rejected 503 when the database fails)."""
        found = self._keys.get(key)
        if found is None:
            found = await self._ask(self._database.integration, hash_token(key))
            self._keys.put(key, found)
        return found

    async def principal(self, authorization: str, needed: Role) -> Principal:
        """The bearer token's principal if its role allows ``needed`` (Rejected 401, 403 or 503)."""
        token = admission.bearer_token(authorization)
        principal = self._tokens.get(token)
        if principal is None:
            found: TokenFound | None = await self._ask(self._database.token, hash_token(token))
            if found is None:
                self._tokens.put(token, None)
                return admission.allowed(None, needed)
            principal = Principal(found.name, Role(found.role))
            self._tokens.put(token, principal)
            self._last_used.setdefault(found.name, found.last_used)
        admission.allowed(principal, needed)
        now = self._clock.now()
        last = self._last_used.get(principal.name)
        if last is None or now - last > TOUCH_EVERY:
            self._last_used[principal.name] = now
            await self._ask(self._database.touch, principal.name, now)
        return principal

    async def ready(self) -> str:
        """ "ok", or why the database is not usable."""
        try:
            await self._ask(self._database.ping)
        except admission.Rejected as exc:
            return exc.detail.partition(";")[0]
        return "ok"

    def close(self) -> None:
        self._pool.submit(self._database.close)
        self._pool.shutdown(wait=False)

    async def _ask(self, work: Callable[..., T], *args: object) -> T:
        loop = asyncio.get_running_loop()
        try:
            return await asyncio.wait_for(loop.run_in_executor(self._pool, work, *args), self._deadline)
        except TimeoutError:
            raise admission.unavailable(f"the database did not answer within {self._deadline:g} s") from None
        except Unavailable as exc:
            raise admission.unavailable(exc.reason) from None
