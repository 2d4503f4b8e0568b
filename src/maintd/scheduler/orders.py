from __future__ import annotations

import os
import uuid
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from maintd.plan.models import Target, Task


class Trigger(StrEnum):
    schedule = "schedule"
    retry = "retry"
    misfire = "misfire"
    manual = "manual"
    recovery = "recovery"


@dataclass(frozen=True)
class RunOrder:
    """A claimed run: the schedule row is marked running with ``run_id``."""

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


def new_run_ids(n: int) -> list[str]:
    """``n`` ids like new_run_id()'s, from one read of the system's random source, not n."""
    pool = os.urandom(16 * n)
    return [uuid.UUID(bytes=pool[i : i + 16], version=4).hex for i in range(0, 16 * n, 16)]
