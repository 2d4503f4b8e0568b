"""Is a process still there? For tests that check nothing a run started survives it."""

from __future__ import annotations

import time
from pathlib import Path


def alive(pid: int) -> bool:
    """Running; a zombie (which PID 1 here may leave unreaped) counts as gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


def dies(pid: int, within: float = 5.0) -> bool:
    """SIGKILL is delivered asynchronously: give the kernel a bounded moment to finish the job."""
    deadline = time.monotonic() + within
    while alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True
