"""Time, injected.

Everything that asks "what time is it?" or "wake me at T" goes through a Clock,
so tests move time instead of sleeping. All datetimes are timezone-aware UTC.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Protocol


def utc(dt: datetime) -> datetime:
    """Return ``dt`` as aware UTC; naive values (SQLite gives those back) are taken as UTC."""
    if dt.tzinfo is None:
        return dt.replace(tzinfo=UTC)
    return dt.astimezone(UTC)


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, aware UTC."""

    async def sleep_until(self, when: datetime, wake: asyncio.Event | None = None) -> None:
        """Return once ``now() >= when`` or ``wake`` is set, whichever comes first."""


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)

    async def sleep_until(self, when: datetime, wake: asyncio.Event | None = None) -> None:
        delay = (when - self.now()).total_seconds()
        if delay <= 0:
            return
        if wake is None:
            await asyncio.sleep(delay)
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(wake.wait(), timeout=delay)


class FakeClock:
    """A clock that only moves when told to."""

    def __init__(self, start: datetime) -> None:
        self._now = utc(start)
        self.sleeping = 0  # loops asleep in sleep_until: tests wait for this, never for wall time
        self._until: list[datetime] = []  # each sleeper's wake-up time

    def now(self) -> datetime:
        return self._now

    def set(self, when: datetime) -> None:
        self._now = utc(when)

    def advance(self, delta: timedelta | float) -> datetime:
        step = delta if isinstance(delta, timedelta) else timedelta(seconds=delta)
        self._now += step
        return self._now

    def asleep_until_later(self) -> int:
        """Loops asleep until a time after now: after ``set``, those woken by it have done their
        work and slept again once this counts them (the sleeping count alone still counts a loop
        the moved clock has not woken yet)."""
        return sum(1 for until in self._until if until > self._now)

    async def sleep_until(self, when: datetime, wake: asyncio.Event | None = None) -> None:
        self.sleeping += 1
        self._until.append(utc(when))
        try:
            await _poll_until(self.now, when, wake)
        finally:
            self.sleeping -= 1
            self._until.remove(utc(when))


class FileClock:
    """A clock whose time is the ISO timestamp in a file.

    For tests that drive a real ``maintd serve`` process: the test writes the
    time, the process reads it (``MAINTD_CLOCK=file:/path``).
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._last: datetime | None = None

    def now(self) -> datetime:
        try:
            self._last = utc(datetime.fromisoformat(self.path.read_text().strip()))
        except (OSError, ValueError):
            if self._last is None:
                raise
            # Caught the file mid-write: time has not moved as far as we can tell.
        return self._last

    async def sleep_until(self, when: datetime, wake: asyncio.Event | None = None) -> None:
        await _poll_until(self.now, when, wake)


def clock_from_spec(spec: str | None) -> Clock:
    """``None``/``system`` → the system clock; ``file:/path`` → a FileClock (tests only)."""
    if not spec or spec == "system":
        return SystemClock()
    if spec.startswith("file:"):
        return FileClock(Path(spec[len("file:") :]))
    raise ValueError(f"unknown clock {spec!r}: expected 'system' or 'file:/path'")


async def _poll_until(now: Callable[[], datetime], when: datetime, wake: asyncio.Event | None) -> None:
    # A moved clock has no way to signal sleepers, so they look at it often.
    while now() < when and not (wake is not None and wake.is_set()):
        await asyncio.sleep(0.01)
