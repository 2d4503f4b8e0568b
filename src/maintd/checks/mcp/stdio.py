"""The stdio transport, owned by maintd: the server runs in its own process group, which dies with the check.

The SDK's ``stdio_client`` hides its process (no process group id for
``ctx.processes``, stderr only to a file, a 2 s + 2 s shutdown). This transport
gives the SDK's ``ClientSession`` the same pair of streams, and keeps what a
health check needs to explain a failure: the exit code, the first line on
stdout that is not JSON-RPC, and the tail of the server's stderr.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
from collections.abc import AsyncIterator

import anyio
from anyio.abc import ObjectReceiveStream, ObjectSendStream
from mcp.client._transport import TransportStreams
from mcp.shared.message import SessionMessage
from mcp_types import jsonrpc_message_adapter

from maintd.checks.base import ProcessTracker
from maintd.checks.command import kill_group

LINE_LIMIT = 32 << 20  # one JSON-RPC message on stdout; a bigger line is a protocol error
_GRACE = 0.5  # seconds the server gets to exit after stdin closes, and again after SIGTERM


class StdioServer:
    """One server process: started by ``streams()``, killed (whole group) when that context ends."""

    def __init__(
        self,
        argv: list[str],
        env: dict[str, str],
        cwd: str | None,
        tracker: ProcessTracker,
        stderr_limit: int,
    ) -> None:
        self.argv = argv
        self.env = env
        self.cwd = cwd
        self.tracker = tracker
        self.stderr_limit = stderr_limit
        self.pid: int | None = None
        self.returncode: int | None = None
        self.garbage: str | None = None
        """Why stdout stopped being a JSON-RPC stream (the offending line, cut short)."""
        self.graceful = False
        """Set when the check ended normally: close stdin and let the server exit before the kill."""
        self._stderr = bytearray()
        self._stderr_dropped = False
        self._proc: asyncio.subprocess.Process | None = None
        self._stderr_done = anyio.Event()

    def stderr_tail(self) -> str:
        text = bytes(self._stderr).decode("utf-8", "replace").strip()
        if text and self._stderr_dropped:
            text = "…" + text
        return text

    async def exit_code(self, wait: float) -> int | None:
        """The exit code if the server has ended (waiting at most ``wait`` seconds)."""
        proc = self._proc
        if proc is None:
            return None
        if proc.returncode is None and wait > 0:
            with anyio.move_on_after(wait):
                while proc.returncode is None:
                    await anyio.sleep(0.01)
        self.returncode = proc.returncode
        return proc.returncode

    @contextlib.asynccontextmanager
    async def streams(self) -> AsyncIterator[TransportStreams]:
        """Start the server; yield (read, write) streams of JSON-RPC messages for ``ClientSession``.

        Raises OSError when the program cannot be started.
        """
        spawn = asyncio.ensure_future(
            asyncio.create_subprocess_exec(
                *self.argv,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                cwd=self.cwd,
                env=self.env,
                start_new_session=True,
                limit=LINE_LIMIT,
            )
        )
        try:
            proc = await asyncio.shield(spawn)
        except asyncio.CancelledError:
            # Cancelled while asyncio was still connecting the pipes: the server may already run
            # (with children), and asyncio would kill only its leader. Let the start finish, kill the group.
            await asyncio.shield(self._abandon(spawn))
            raise
        # No await between the spawn and the try: a cancellation there would leak the group.
        self._proc, self.pid = proc, proc.pid
        self.tracker.started(proc.pid)
        try:
            read_send, read_recv = anyio.create_memory_object_stream[SessionMessage | Exception](16)
            write_send, write_recv = anyio.create_memory_object_stream[SessionMessage](16)
            async with anyio.create_task_group() as tg:
                tg.start_soon(self._read_stdout, proc, read_send)
                tg.start_soon(self._write_stdin, proc, write_recv, read_send)
                tg.start_soon(self._read_stderr, proc)
                try:
                    yield read_recv, write_send
                finally:
                    read_recv.close()
                    write_send.close()
                    try:
                        if self.graceful:
                            await self._ask_to_exit(proc)
                    finally:
                        kill_group(proc.pid)
                    # The group is dead, so stderr ends: keep what it said last (a bounded wait).
                    with anyio.move_on_after(_GRACE):
                        await self._stderr_done.wait()
                    tg.cancel_scope.cancel()
        finally:
            # Always, also after a clean exit: nothing the server started may outlive the check.
            kill_group(proc.pid)
            await self._reap(proc)
            self.tracker.ended(proc.pid)

    async def _read_stdout(
        self,
        proc: asyncio.subprocess.Process,
        out: ObjectSendStream[SessionMessage | Exception],
    ) -> None:
        assert proc.stdout is not None
        async with out:  # closing it is how the session learns the connection ended
            while True:
                try:
                    line = await proc.stdout.readline()
                except ValueError:  # asyncio's LimitOverrunError, re-raised by readline
                    self.garbage = f"a line longer than {LINE_LIMIT} bytes"
                    return
                except (ConnectionError, OSError):
                    return
                if not line:
                    return
                text = line.decode("utf-8", "replace").strip()
                if not text:
                    continue
                try:
                    message = jsonrpc_message_adapter.validate_json(text, by_name=False)
                except ValueError:
                    self.garbage = _why_not_jsonrpc(text)
                    return
                try:
                    await out.send(SessionMessage(message))
                except (anyio.ClosedResourceError, anyio.BrokenResourceError):
                    return

    async def _write_stdin(
        self,
        proc: asyncio.subprocess.Process,
        messages: ObjectReceiveStream[SessionMessage],
        read_side: ObjectSendStream[SessionMessage | Exception],
    ) -> None:
        assert proc.stdin is not None
        try:
            async with messages:
                async for item in messages:
                    data = item.message.model_dump_json(by_alias=True, exclude_unset=True)
                    proc.stdin.write(data.encode() + b"\n")
                    await proc.stdin.drain()
        except (ConnectionError, OSError):
            # The server closed its stdin (it exited): end the session instead of waiting forever.
            await read_side.aclose()

    async def _read_stderr(self, proc: asyncio.subprocess.Process) -> None:
        """Keep the last ``stderr_limit`` bytes; read it all, so the server never blocks on a full pipe."""
        assert proc.stderr is not None
        try:
            with contextlib.suppress(ConnectionError, OSError):
                while chunk := await proc.stderr.read(65536):
                    self._stderr += chunk
                    if len(self._stderr) > self.stderr_limit:
                        del self._stderr[: len(self._stderr) - self.stderr_limit]
                        self._stderr_dropped = True
        finally:
            self._stderr_done.set()

    async def _ask_to_exit(self, proc: asyncio.subprocess.Process) -> None:
        """The spec's shutdown for stdio: close stdin, wait, SIGTERM, wait (then the caller's SIGKILL)."""
        if proc.stdin is not None and not proc.stdin.is_closing():
            proc.stdin.close()
        if await self.exit_code(_GRACE) is not None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGTERM)
        await self.exit_code(_GRACE)

    async def _abandon(self, spawn: asyncio.Future[asyncio.subprocess.Process]) -> None:
        try:
            proc = await spawn
        except OSError:
            return  # it never started
        kill_group(proc.pid)
        await self._reap(proc)

    async def _reap(self, proc: asyncio.subprocess.Process) -> None:
        if proc.stdin is not None and not proc.stdin.is_closing():
            proc.stdin.close()
        # Shielded, like the command kind: a cancellation here leaves the wait running, so no zombie.
        # Bounded: a process outside the group holding our pipes open must not hold the check up.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(proc.wait()), 2)
        self.returncode = proc.returncode
        # wait() returns once the exit code is known, maybe before the pipes' EOF; an unclosed
        # subprocess transport would then close its pipes at garbage collection, on a closed loop.
        transport = getattr(proc, "_transport", None)
        if isinstance(transport, asyncio.SubprocessTransport):
            transport.close()


def _why_not_jsonrpc(text: str) -> str:
    shown = text if len(text) <= 200 else text[:200] + "…"
    try:
        json.loads(text)
    except ValueError:
        return f"not JSON: {shown!r}"
    return f"JSON but not a JSON-RPC message: {shown!r}"
