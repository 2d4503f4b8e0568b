"""Run a program in its own process group, output capped, the whole group killed at the end.

Shared by the ``command`` and ``nagios`` kinds.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from dataclasses import dataclass

from maintd.checks.base import ProcessTracker

# After its group is killed, how long a process may keep its output pipe open (a grandchild
# that left the group with setsid) before the run stops waiting for the pipe.
_PIPE_GRACE = 0.5


@dataclass(frozen=True)
class Finished:
    """How a program ended: its exit status, or None when it was killed at the time limit."""

    code: int | None  # < 0: killed by that signal
    output: bytes  # stdout and stderr, interleaved, at most ``limit`` bytes
    truncated: bool
    time_limit: float | None = None


class _Capture:
    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.kept = bytearray()
        self.truncated = False

    async def drain(self, stream: asyncio.StreamReader) -> None:
        """Read to EOF keeping the first ``limit`` bytes; drain the rest so the writer never blocks."""
        while chunk := await stream.read(65536):
            room = self.limit - len(self.kept)
            if room > 0:
                self.kept += chunk[:room]
            if len(chunk) > room:
                self.truncated = True


async def read_capped(stream: asyncio.StreamReader, limit: int) -> tuple[bytes, bool]:
    """Read to EOF keeping the first ``limit`` bytes; drain the rest so the writer never blocks."""
    capture = _Capture(limit)
    await capture.drain(stream)
    return bytes(capture.kept), capture.truncated


async def execute(
    argv: list[str],
    *,
    env: dict[str, str] | None = None,
    cwd: str | None = None,
    limit: int,
    tracker: ProcessTracker | None = None,
    time_limit: float | None = None,
) -> Finished:
    """Execute ``argv`` (never a shell) in its own process group and wait for it.

    ``env`` is added to maintd's environment. The group is killed when the
    program exits, after ``time_limit`` seconds, and when the caller is
    cancelled (timeout, window end, shutdown): nothing it started outlives the
    run. ``tracker`` hears of the group, so a maintd restarted after a crash
    can kill it. Raises OSError when the program cannot be started.
    """
    spawn = asyncio.ensure_future(
        asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            cwd=cwd,
            env={**os.environ, **env} if env else None,
            start_new_session=True,
        )
    )
    try:
        proc = await asyncio.shield(spawn)
    except asyncio.CancelledError:
        # Cancelled while asyncio was still connecting the pipes: the program may already
        # run (and have started children). asyncio would kill only the leader; let the
        # start finish, then kill the whole group.
        await asyncio.shield(_abandon(spawn))
        raise
    if tracker is not None:
        tracker.started(proc.pid)
    capture = _Capture(limit)
    code: int | None = None
    try:
        assert proc.stdout is not None
        async with asyncio.timeout(time_limit):
            await capture.drain(proc.stdout)
            code = await proc.wait()
    except TimeoutError:
        code = None
    finally:
        # On cancellation and after a normal exit alike: kill what is left of the group.
        kill_group(proc.pid)
        await asyncio.shield(_reap(proc))
        if tracker is not None:
            tracker.ended(proc.pid)
    return Finished(code, bytes(capture.kept), capture.truncated, time_limit)


async def _abandon(spawn: asyncio.Future[asyncio.subprocess.Process]) -> None:
    try:
        proc = await spawn
    except OSError:
        return  # it never started
    kill_group(proc.pid)
    await _reap(proc)


async def _reap(proc: asyncio.subprocess.Process) -> None:
    if proc.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
    try:
        async with asyncio.timeout(_PIPE_GRACE):
            await proc.wait()
    except TimeoutError:
        # The program is dead, but something outside its group still holds the output
        # pipe; asyncio's wait() waits for the pipe too. Close our end and stop waiting.
        transport = getattr(proc, "_transport", None)
        if transport is not None:
            transport.close()
        await proc.wait()


def kill_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)
