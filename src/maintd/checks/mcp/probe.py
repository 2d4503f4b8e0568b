"""One MCP health check, step by step, on the SDK's ``ClientSession`` (imported only when a check runs).

The transport (stdio or streamable HTTP), then the steps in order: the era
(``era``: server/discover or the initialize handshake), ping in the handshake
era, the tools (``tools``), and what any failure on the way means. The
conversation's state is ``conversation``; the result is built by ``result``.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator

import anyio
import httpx2
import mcp_types as types
from mcp.client._transport import TransportStreams
from mcp.client.session import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client
from mcp.shared.exceptions import MCPError
from pydantic import ValidationError

from maintd import __version__
from maintd.checks.base import CheckResult, ProcessTracker
from maintd.checks.mcp.conversation import Conversation, OutOfTime, Plan, Stop, first_error
from maintd.checks.mcp.endpoint import Stdio
from maintd.checks.mcp.era import negotiate
from maintd.checks.mcp.result import result_of
from maintd.checks.mcp.stdio import StdioServer
from maintd.checks.mcp.tools import call_tool, check_tools, list_tools

__all__ = ["Plan", "Probe"]

_HTTP_CLOSE_GRACE = 0.5  # seconds for ending an HTTP session (DELETE) after the check


class Probe(Conversation):
    def __init__(self, plan: Plan, budget: float, tracker: ProcessTracker) -> None:
        super().__init__(plan, budget)
        self.tracker = tracker
        self.server: StdioServer | None = None
        self._started = 0.0
        self._ended: float | None = None

    async def run(self) -> CheckResult:
        self._started = time.perf_counter()
        self.deadline = anyio.current_time() + self.budget
        try:
            await self._converse()
        except Exception as exc:  # often inside an ExceptionGroup from the SDK's task groups
            self.fail(self._explain(_leaf(exc)))
        if self.server is not None:
            self.report.stderr = self.server.stderr_tail()
            self.report.pid = self.server.pid
        if self.report.failure is None and not self.report.listed:
            self.fail(f"{self.step}: the connection ended")  # e.g. an exception lost to a cancelled close
        self.report.total = (self._ended or time.perf_counter()) - self._started
        return result_of(self.report, self.plan)

    async def _converse(self) -> None:
        async with self._transport() as (read, write):
            self.timed("connect", self._started)
            client_info = types.Implementation(name="maintd", version=__version__)
            async with ClientSession(read, write, client_info=client_info) as session:
                try:
                    await self._health_check(session)
                except MCPError as exc:
                    await self._fail_from(exc)
                    raise Stop from None
                except ValidationError as exc:
                    self.fail(f"{self.step}: the answer is not a valid result: {first_error(exc)}")
                    raise Stop from None
                except RuntimeError as exc:  # the SDK's own protocol checks
                    self.fail(f"{self.step}: {exc}")
                    raise Stop from None
                except Exception as exc:
                    # Said now: a cancelled end of the session (see _transport) must not lose it.
                    self.fail(self._explain(_leaf(exc)))
                    raise
                finally:
                    self._ended = time.perf_counter()  # the total leaves out stopping the server
                if self.server is not None:
                    self.server.graceful = True

    @contextlib.asynccontextmanager
    async def _transport(self) -> AsyncIterator[TransportStreams]:
        ep = self.plan.endpoint
        if isinstance(ep, Stdio):
            self.server = StdioServer(ep.argv, ep.env, ep.cwd, self.tracker, self.plan.stderr_limit)
            async with self.server.streams() as streams:
                yield streams
            return
        client = create_mcp_http_client(headers=ep.headers, timeout=httpx2.Timeout(max(self.budget, 0.1)))
        # The SDK turns an HTTP error without a JSON-RPC body into -32603 "Server returned an error
        # response", dropping the status: keep it, to say "HTTP 401 Unauthorized" instead.
        client.event_hooks["response"].append(self._saw_response)
        async with client:
            with anyio.CancelScope() as ending:
                async with streamable_http_client(ep.url, http_client=client) as streams:
                    try:
                        yield streams
                    finally:
                        # Leaving ends the session (DELETE): a hung server gets a moment, not the budget.
                        ending.deadline = anyio.current_time() + _HTTP_CLOSE_GRACE

    async def _saw_response(self, response: httpx2.Response) -> None:
        if response.status_code >= 400:
            self.http_error = f"HTTP {response.status_code} {response.reason_phrase}".strip()

    async def _health_check(self, session: ClientSession) -> None:
        await negotiate(self, session)
        if self.report.era == "handshake":
            await self.timed_call("ping", session.send_ping)
        await list_tools(self, session)
        check_tools(self)
        if self.plan.call_tool is not None:
            await call_tool(self, session, *self.plan.call_tool)

    async def _fail_from(self, exc: MCPError) -> None:
        if exc.code != types.CONNECTION_CLOSED:
            self.fail(f"{self.step}: {self.error(exc)}")
            return
        server = self.server
        if server is None:
            self.fail(f"{self.step}: the connection closed")
            return
        if server.garbage is not None:
            self.fail(f"{self.step}: the server wrote to stdout what is not JSON-RPC: {server.garbage}")
            return
        code = await server.exit_code(1.0)
        if code is None:
            self.fail(f"{self.step}: the server closed its stdout")
        elif code < 0:
            self.fail(f"{self.step}: the server was killed by signal {-code}")
        else:
            self.fail(f"{self.step}: the server exited with code {code}")

    def _explain(self, leaf: BaseException) -> str:
        if isinstance(leaf, Stop):
            return self.report.failure or f"{self.step}: stopped"
        if isinstance(leaf, OutOfTime):
            return f"no answer to {self.step} within {self.budget:.1f} s (the run's deadline)"
        if isinstance(leaf, OSError) and self.step == "connect" and isinstance(self.plan.endpoint, Stdio):
            return f"cannot start {self.plan.endpoint.argv[0]}: {leaf.strerror or leaf}"
        if isinstance(leaf, MCPError):
            return f"{self.step}: {self.error(leaf)}"
        if isinstance(leaf, httpx2.HTTPError):
            return f"{self.step}: cannot reach {self.report.where}: {_text(leaf)}"
        if isinstance(leaf, OSError):
            return f"{self.step}: {leaf.strerror or leaf}"
        return f"{self.step}: {_text(leaf)}"


def _leaf(exc: BaseException) -> BaseException:
    """The first real error inside (nested) exception groups."""
    while isinstance(exc, BaseExceptionGroup):
        inner = [e for e in exc.exceptions if not isinstance(e, anyio.get_cancelled_exc_class())]
        exc = (inner or list(exc.exceptions))[0]
    return exc


def _text(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__
