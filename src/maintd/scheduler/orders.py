from __future__ import annotations

import os
import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any, NamedTuple

from maintd.plan.models import Target, Task


class Trigger(StrEnum):
    schedule = "schedule"
    retry = "retry"
    misfire = "misfire"
    manual = "manual"
    recovery = "recovery"


class RunOrder(NamedTuple):
    """A claimed run: the schedule row is marked running with ``run_id``.

    A NamedTuple rather than a frozen dataclass: one is made per run, and a frozen dataclass of
    eleven fields took ~20 k instructions to make (each field set through object.__setattr__),
    a NamedTuple ~6 k."""

    run_id: str
    schedule_id: int
    task: Task
    target: Target
    config: Any
    trigger: Trigger
    attempt: int
    scheduled_for: datetime
    window_end: datetime | None
    in_window: bool
    dry_run: bool = False


def new_run_id() -> str:
    return uuid.uuid4().hex


# A random UUID's fixed bits (RFC 4122), set byte-wise: the version nibble in byte 6, the variant
# in byte 8. uuid.UUID(bytes=..., version=4) does the same per id, in Python: ~14 k instructions
# an id, where this is a few hundred.
_VERSION_4 = bytes((b & 0x0F) | 0x40 for b in range(256))
_VARIANT = bytes((b & 0x3F) | 0x80 for b in range(256))


def new_run_ids(n: int) -> list[str]:
    """``n`` ids like new_run_id()'s, from one read of the system's random source, not n."""
    pool = bytearray(os.urandom(16 * n))
    pool[6::16] = pool[6::16].translate(_VERSION_4)
    pool[8::16] = pool[8::16].translate(_VARIANT)
    text = pool.hex()
    return [text[i : i + 32] for i in range(0, 32 * n, 32)]
