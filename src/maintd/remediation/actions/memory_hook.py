"""``memory_hook`` (high_memory): trigger a configured GC or restart hook.

Exactly one hook: a signal to the process in a pidfile (``SIGUSR1`` asking for a garbage
collection, ``SIGTERM`` for a restart by its supervisor), a command, or a webhook. With a
signal and ``wait_restart``, success means the supervisor brought up a new process (the
pidfile names another live pid) within that time.
"""

from __future__ import annotations

import asyncio
import os
import signal as signals
from datetime import timedelta
from pathlib import Path
from typing import Any, Self

from pydantic import Field, model_validator

from maintd.checks.base import Change
from maintd.plan.base import StrictModel
from maintd.plan.types import Duration
from maintd.remediation.actions.command import run_command
from maintd.remediation.actions.webhook import post
from maintd.remediation.base import ActionContext, ActionKind, ActionResult

POLL = 0.05  # seconds between looks at the pidfile while waiting for the restart


class MemoryHookConfig(StrictModel):
    pidfile: str | None = Field(default=None, description="file holding the process id to signal")
    signal: str = Field(
        default="TERM", pattern=r"^(SIG)?[A-Z0-9]+$", description="signal sent to the pidfile's process"
    )
    wait_restart: Duration | None = Field(
        default=None,
        description="with pidfile: wait this long for the supervisor to start a new process (a new pid)",
    )
    argv: list[str] | None = Field(default=None, description="a command to run instead (argument list)")
    url: str | None = Field(default=None, pattern=r"^https?://\S+$", description="a webhook to POST instead")
    destructive: bool = Field(default=True, description="whether it needs approval under approval: auto")

    @model_validator(mode="after")
    def _one_hook(self) -> Self:
        given = [k for k in ("pidfile", "argv", "url") if getattr(self, k)]
        if len(given) != 1:
            raise ValueError("name exactly one hook: pidfile (with signal), argv or url")
        name = self.signal if self.signal.startswith("SIG") else f"SIG{self.signal}"
        if not hasattr(signals.Signals, name):
            raise ValueError(f"unknown signal {self.signal!r}")
        return self

    @property
    def signum(self) -> signals.Signals:
        return signals.Signals[self.signal if self.signal.startswith("SIG") else f"SIG{self.signal}"]


class MemoryHook:
    def __init__(self, config: MemoryHookConfig) -> None:
        self.config = config

    async def execute(self, ctx: ActionContext) -> ActionResult:
        cfg = self.config
        if cfg.argv:
            change = Change("run", cfg.argv[0], {"argv": cfg.argv})
            if ctx.dry_run:
                return ActionResult(True, f"dry run: would run {cfg.argv!r}", [change])
            return await run_command(cfg.argv, {}, None, ctx, change)
        if cfg.url:
            return await post(cfg.url, {"hook": "high_memory"}, {}, None, ctx)
        assert cfg.pidfile is not None
        return await _signal(Path(cfg.pidfile), cfg.signum, cfg.wait_restart, ctx)


def _read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


async def _signal(
    path: Path, signum: signals.Signals, wait: timedelta | None, ctx: ActionContext
) -> ActionResult:
    pid = _read_pid(path)
    if pid is None:
        return ActionResult(False, f"pidfile {path}: missing, unreadable or not a process id")
    if not _alive(pid):
        return ActionResult(False, f"pidfile {path}: process {pid} is not running")
    change = Change("signal", f"pid {pid}", {"signal": signum.name, "pidfile": str(path)})
    if ctx.dry_run:
        return ActionResult(True, f"dry run: would send {signum.name} to {pid} ({path})", [change])
    try:
        os.kill(pid, signum)
    except ProcessLookupError:
        return ActionResult(False, f"process {pid} ({path}) exited before the signal")
    except PermissionError:
        return ActionResult(False, f"process {pid} ({path}): permission denied sending {signum.name}")
    if wait is None:
        return ActionResult(True, f"sent {signum.name} to {pid} ({path})", [change])
    new = await _restarted(path, pid, min(wait.total_seconds(), ctx.seconds_left()))
    if new is None:
        return ActionResult(
            False, f"sent {signum.name} to {pid}; no new process in {path} within {wait}", [change]
        )
    detail: dict[str, Any] = {**change.detail, "new_pid": new}
    return ActionResult(
        True, f"sent {signum.name} to {pid}; restarted as {new}", [Change("restart", f"pid {pid}", detail)]
    )


async def _restarted(path: Path, old: int, within: float) -> int | None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while loop.time() < deadline:
        pid = _read_pid(path)
        if pid is not None and pid != old and _alive(pid):
            return pid
        await asyncio.sleep(POLL)
    return None


ACTION = ActionKind(
    name="memory_hook",
    config=MemoryHookConfig,
    build=MemoryHook,
    summary="high_memory: signal a process (GC or restart by its supervisor), or run a hook",
    destructive=lambda cfg: bool(cfg.destructive),
)
