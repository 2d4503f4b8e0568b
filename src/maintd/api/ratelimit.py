"""Token buckets per sender, in process memory (each maintd process counts its own requests)."""

from __future__ import annotations

import threading
from datetime import datetime


class RateLimiter:
    """Each key may send ``burst`` requests at once, then ``rate`` per second."""

    def __init__(self, rate: float, burst: int) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError(f"a rate limit needs rate > 0 and burst >= 1, not {rate}/s burst {burst}")
        self.rate = rate
        self.burst = burst
        self._buckets: dict[str, tuple[float, datetime]] = {}  # key -> (tokens left, when counted)
        self._lock = threading.Lock()

    def take(self, key: str, now: datetime) -> float:
        """Spend one request of ``key``'s budget: 0.0 when allowed, else the seconds until one is."""
        with self._lock:
            tokens, at = self._buckets.get(key, (float(self.burst), now))
            elapsed = max(0.0, (now - at).total_seconds())  # a clock stepped back refills nothing
            tokens = min(float(self.burst), tokens + elapsed * self.rate)
            if tokens >= 1.0:
                self._buckets[key] = (tokens - 1.0, now)
                return 0.0
            self._buckets[key] = (tokens, now)
            return (1.0 - tokens) / self.rate
