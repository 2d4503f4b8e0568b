"""What was found, remembered for a short while; what was not found, never.

Alert senders are looked up on every request (maintd serve's routes and maintd intake both do);
a key or token found is trusted for ``ttl`` real seconds, so a key disabled or a token revoked
elsewhere still works here for that long. A miss is never remembered: a new key works at once
and a wrong one costs a look-up every time.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Generic, TypeVar

V = TypeVar("V")


class Remembered(Generic[V]):
    """Values by key, each trusted for ``ttl`` seconds of ``monotonic`` after it was found."""

    def __init__(self, ttl: float, monotonic: Callable[[], float] = time.monotonic) -> None:
        self._ttl = ttl
        self._monotonic = monotonic
        self._found: dict[str, tuple[V, float]] = {}

    def get(self, key: str) -> V | None:
        """The value found for ``key`` less than ``ttl`` ago, or None: ask the database."""
        hit = self._found.get(key)
        if hit is not None and hit[1] > self._monotonic():
            return hit[0]
        return None

    def put(self, key: str, found: V | None) -> None:
        """Remember what a look-up found; a miss (None) forgets the key instead."""
        if found is None:
            self._found.pop(key, None)
        else:
            self._found[key] = (found, self._monotonic() + self._ttl)

    def clear(self) -> None:
        self._found.clear()
