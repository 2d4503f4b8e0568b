"""A bounded look at the keys: SCAN batches, each key's TTL and MEMORY USAGE in one pipeline per batch.

SCAN never blocks the server for long (it walks a few buckets per call); the
sample stops at ``sample_keys`` keys or ``sample_seconds``, whichever comes
first, so a server with a hundred million keys costs the same as a small one.
"""

from __future__ import annotations

import heapq
import time
from dataclasses import dataclass, field

import redis.asyncio as aioredis

SCAN_COUNT = 100  # keys asked per SCAN call: the server's hint, not a promise
USAGE_SAMPLES = 5  # MEMORY USAGE's default: nested values are estimated from 5 elements


@dataclass
class Sample:
    keys: int = 0
    no_ttl: int = 0
    seconds: float = 0.0
    complete: bool = False  # the SCAN went round the whole keyspace
    big: int = 0  # keys of at least big_bytes
    biggest: list[tuple[int, str]] = field(default_factory=list)  # (bytes, key), largest first

    @property
    def no_ttl_share(self) -> float | None:
        return self.no_ttl / self.keys if self.keys else None


async def sample_keys(
    client: aioredis.Redis, *, limit: int, seconds: float, match: str | None, keep: int, big_bytes: int
) -> Sample:
    """TTL and size of up to ``limit`` keys (``match``ing), within ``seconds``: how many have no TTL,
    how many use ``big_bytes`` or more, and the ``keep`` biggest."""
    found = Sample()
    if limit <= 0:
        return found
    started = time.monotonic()
    heap: list[tuple[int, str]] = []
    cursor = 0
    while True:
        cursor, batch = await client.scan(cursor=cursor, match=match, count=SCAN_COUNT)
        keys = batch[: limit - found.keys]
        if keys:
            pipe = client.pipeline(transaction=False)
            for key in keys:
                pipe.ttl(key)
                pipe.memory_usage(key, samples=USAGE_SAMPLES)
            answers = await pipe.execute(raise_on_error=False)
            for key, ttl, usage in zip(keys, answers[::2], answers[1::2], strict=True):
                if isinstance(ttl, int) and ttl == -2:
                    continue  # expired or deleted between SCAN and TTL
                found.keys += 1
                if ttl == -1:
                    found.no_ttl += 1
                if isinstance(usage, int):
                    found.big += usage >= big_bytes
                    entry = (usage, _name(key))
                    if len(heap) < keep:
                        heapq.heappush(heap, entry)
                    else:
                        heapq.heappushpop(heap, entry)
        if cursor == 0:
            found.complete = len(keys) == len(batch)
            break
        if found.keys >= limit or time.monotonic() - started >= seconds:
            break
    found.seconds = time.monotonic() - started
    found.biggest = sorted(heap, reverse=True)
    return found


def _name(key: bytes | str) -> str:
    text = key.decode("utf-8", "backslashreplace") if isinstance(key, bytes) else key
    return text if len(text) <= 120 else text[:119] + "…"
