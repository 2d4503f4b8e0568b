"""One MCP health check, step by step, on the SDK's ``ClientSession`` (imported only when a check runs).

The era negotiation is driven here rather than by ``Client(mode="auto")`` so
that each step has its own latency and every fallback its reason; the policy
is the SDK's (``mcp.client._probe.negotiate_auto``): probe ``server/discover``
at the newest modern version; a -32022 naming a mutual modern version re-probes
once at it; a -32022 naming only modern versions maintd does not speak is an
incompatibility; any other error, an answer that is not a DiscoverResult, or
one listing no modern version falls back to the ``initialize`` handshake.
"""

from __future__ import annotations

import contextlib
import functools
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import anyio
import httpx2
import mcp_types as types
from mcp.client._transport import TransportStreams
from mcp.client.session import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client
from mcp.shared.exceptions import MCPError
from mcp_types.version import (
    HANDSHAKE_PROTOCOL_VERSIONS,
    KNOWN_PROTOCOL_VERSIONS,
    LATEST_HANDSHAKE_VERSION,
    MODERN_PROTOCOL_VERSIONS,
)
from pydantic import ValidationError

from maintd import __version__
from maintd.checks.base import CheckResult, ProcessTracker, Status
from maintd.checks.mcp.endpoint import Http, Stdio
from maintd.checks.mcp.stdio import StdioServer

MAX_PAGES = 1000  # tools/list pages followed before the listing counts as endless
_HTTP_CLOSE_GRACE = 0.5  # seconds for ending an HTTP session (DELETE) after the check
_METRIC = {"server/discover": "discover", "tools/list": "tools_list", "tools/call": "call"}
_T = TypeVar("_T")


@dataclass(frozen=True)
class Plan:
    """What to do: the kind's params, resolved against the target."""

    endpoint: Stdio | Http
    protocol: str
    expect_tools: list[str]
    min_tools: int
    warn_latency: float | None
    crit_latency: float | None
    call_tool: tuple[str, dict[str, Any]] | None
    dry_run: bool
    stderr_limit: int


@dataclass
class Report:
    transport: str
    where: str
    era: str | None = None
    version: str | None = None
    server: str | None = None
    tools: list[str] = field(default_factory=list)
    pages: int = 0
    listed: bool = False
    steps: list[tuple[str, float]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    failure: str | None = None
    call: str | None = None
    call_failed: bool = False
    pid: int | None = None
    stderr: str = ""
    total: float = 0.0


class _Stop(Exception):
    """Ends the conversation with ``report.failure`` set."""


class _OutOfTime(Exception):
    pass


class Probe:
    def __init__(self, plan: Plan, budget: float, tracker: ProcessTracker) -> None:
        self.plan = plan
        self.budget = budget
        self.tracker = tracker
        ep = plan.endpoint
        self.report = Report("stdio" if isinstance(ep, Stdio) else "http", ep.describe())
        self.step = "connect"
        self.server: StdioServer | None = None
        self.http_error: str | None = None
        self._deadline = 0.0
        self._started = 0.0
        self._ended: float | None = None

    async def run(self) -> CheckResult:
        self._started = time.perf_counter()
        self._deadline = anyio.current_time() + self.budget
        try:
            await self._converse()
        except Exception as exc:  # often inside an ExceptionGroup from the SDK's task groups
            self._fail(self._explain(_leaf(exc)))
        if self.server is not None:
            self.report.stderr = self.server.stderr_tail()
            self.report.pid = self.server.pid
        if self.report.failure is None and not self.report.listed:
            self._fail(f"{self.step}: the connection ended")  # e.g. an exception lost to a cancelled close
        self.report.total = (self._ended or time.perf_counter()) - self._started
        return result_of(self.report, self.plan)

    async def _converse(self) -> None:
        async with self._transport() as (read, write):
            self._timed("connect", self._started)
            client_info = types.Implementation(name="maintd", version=__version__)
            async with ClientSession(read, write, client_info=client_info) as session:
                try:
                    await self._health_check(session)
                except MCPError as exc:
                    await self._fail_from(exc)
                    raise _Stop from None
                except ValidationError as exc:
                    self._fail(f"{self.step}: the answer is not a valid result: {_first_error(exc)}")
                    raise _Stop from None
                except RuntimeError as exc:  # the SDK's own protocol checks
                    self._fail(f"{self.step}: {exc}")
                    raise _Stop from None
                except Exception as exc:
                    # Said now: a cancelled end of the session (see _transport) must not lose it.
                    self._fail(self._explain(_leaf(exc)))
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
        await self._negotiate(session)
        if self.report.era == "handshake":
            await self._timed_call("ping", session.send_ping)
        await self._list_tools(session)
        self._check_tools()
        if self.plan.call_tool is not None:
            await self._call_tool(session, *self.plan.call_tool)

    # -- era negotiation ---------------------------------------------------------------------------

    async def _negotiate(self, session: ClientSession) -> None:
        pinned = self.plan.protocol
        if pinned in HANDSHAKE_PROTOCOL_VERSIONS:
            await self._initialize(session, pinned, exact=True)
            return
        if pinned == "legacy":
            await self._initialize(session, LATEST_HANDSHAKE_VERSION, exact=False)
            return
        modern_pin = pinned in MODERN_PROTOCOL_VERSIONS
        version = pinned if modern_pin else MODERN_PROTOCOL_VERSIONS[-1]
        for attempt in range(2):
            try:
                raw = await self._timed_call(
                    "server/discover", functools.partial(session.send_discover, version)
                )
            except MCPError as exc:
                if exc.code == types.CONNECTION_CLOSED:
                    raise
                supported = _supported(exc) if exc.code == types.UNSUPPORTED_PROTOCOL_VERSION else None
                if supported is not None:
                    self.report.notes.append(
                        f"server/discover at {version}: unsupported protocol version; "
                        f"the server supports {', '.join(supported) or 'nothing'}"
                    )
                    if modern_pin:
                        self._fail(f"the server does not support the pinned protocol {version}")
                        raise _Stop from None
                    mutual = [v for v in MODERN_PROTOCOL_VERSIONS if v in supported]
                    if mutual and attempt == 0:
                        version = mutual[-1]
                        continue
                    if not any(v in HANDSHAKE_PROTOCOL_VERSIONS for v in supported):
                        self._fail(
                            f"no protocol version in common: the server supports {', '.join(supported)}; "
                            f"maintd speaks {', '.join(KNOWN_PROTOCOL_VERSIONS)}"
                        )
                        raise _Stop from None
                elif modern_pin:
                    self._fail(f"server/discover: {self._error(exc)}")
                    raise _Stop from None
                else:
                    self.report.notes.append(f"server/discover: {self._error(exc)}: handshake era")
                await self._initialize(session, LATEST_HANDSHAKE_VERSION, exact=False)
                return
            try:
                result = types.DiscoverResult.model_validate(raw)
            except ValidationError as exc:
                if modern_pin:
                    raise
                self.report.notes.append(
                    f"server/discover answered with no DiscoverResult ({_first_error(exc)}): handshake era"
                )
                await self._initialize(session, LATEST_HANDSHAKE_VERSION, exact=False)
                return
            mutual = [v for v in MODERN_PROTOCOL_VERSIONS if v in result.supported_versions]
            if not mutual or (modern_pin and version not in result.supported_versions):
                listed = ", ".join(result.supported_versions) or "nothing"
                if modern_pin:
                    self._fail(f"server/discover lists {listed}, not the pinned protocol {version}")
                    raise _Stop
                self.report.notes.append(f"server/discover lists only {listed}: handshake era")
                await self._initialize(session, LATEST_HANDSHAKE_VERSION, exact=False)
                return
            session.adopt(result)
            self.report.era = "modern"
            self.report.version = session.protocol_version
            self.report.server = _server_name(session.server_info)
            return

    async def _initialize(self, session: ClientSession, version: str, *, exact: bool) -> None:
        request = types.InitializeRequest(
            params=types.InitializeRequestParams(
                protocol_version=version,
                capabilities=types.ClientCapabilities(),
                client_info=types.Implementation(name="maintd", version=__version__),
            )
        )
        result = await self._timed_call(
            "initialize", lambda: session.send_request(request, types.InitializeResult)
        )
        answered = result.protocol_version
        if answered not in HANDSHAKE_PROTOCOL_VERSIONS or (exact and answered != version):
            wanted = f"the pinned {version}" if exact else "a handshake-era version maintd speaks"
            self._fail(f"initialize: the server answered protocol {answered}, not {wanted}")
            raise _Stop
        session.adopt(result)
        self.report.era = "handshake"
        self.report.version = answered
        self.report.server = _server_name(result.server_info)
        await session.send_notification(types.InitializedNotification())

    # -- tools -------------------------------------------------------------------------------------

    async def _list_tools(self, session: ClientSession) -> None:
        self.step = "tools/list"
        self.http_error = None
        started = time.perf_counter()
        names: list[str] = []
        seen: set[str] = set()
        try:
            await self._pages(session, names, seen)
        finally:
            self._timed("tools/list", started)
        self.report.tools = names
        self.report.listed = True

    async def _pages(self, session: ClientSession, names: list[str], seen: set[str]) -> None:
        cursor: str | None = None
        while True:
            params = types.PaginatedRequestParams(cursor=cursor) if cursor is not None else None
            page = await self._within_budget(functools.partial(session.list_tools, params=params))
            self.report.pages += 1
            names.extend(tool.name for tool in page.tools)
            cursor = page.next_cursor
            if cursor is None:
                break
            if cursor in seen:
                self._fail(f"tools/list: the server repeats the cursor {cursor!r}; the listing never ends")
                raise _Stop
            if self.report.pages >= MAX_PAGES:
                self._fail(f"tools/list: still more after {MAX_PAGES} pages; the listing never ends")
                raise _Stop
            seen.add(cursor)

    def _check_tools(self) -> None:
        have = set(self.report.tools)
        missing = [name for name in self.plan.expect_tools if name not in have]
        if missing:
            self._fail(f"missing expected tools: {', '.join(missing)}")
            raise _Stop
        if len(self.report.tools) < self.plan.min_tools:
            self._fail(f"{len(self.report.tools)} tools, fewer than min_tools {self.plan.min_tools}")
            raise _Stop

    async def _call_tool(self, session: ClientSession, name: str, arguments: dict[str, Any]) -> None:
        if self.plan.dry_run:
            self.report.call = f"dry run: did not call {name} (a tool call may change things)"
            return
        try:
            result = await self._timed_call("tools/call", lambda: session.call_tool(name, arguments))
        except MCPError as exc:
            if exc.code == types.CONNECTION_CLOSED:
                raise
            self.report.call = f"tools/call {name}: {self._error(exc)}"
            self.report.call_failed = True
            return
        if not isinstance(result, types.CallToolResult):
            self.report.call = f"tools/call {name}: unexpected {type(result).__name__}"
            self.report.call_failed = True
            return
        text = _content_text(result)
        if result.is_error:
            self.report.call = f"tools/call {name} returned an error: {text}"
            self.report.call_failed = True
        else:
            self.report.call = f"tools/call {name}: ok ({text})" if text else f"tools/call {name}: ok"

    # -- time --------------------------------------------------------------------------------------

    async def _timed_call(self, step: str, call: Callable[[], Awaitable[_T]]) -> _T:
        self.step = step
        self.http_error = None
        started = time.perf_counter()
        try:
            return await self._within_budget(call)
        finally:  # an error answer has a latency too
            self._timed(step, started)

    async def _within_budget(self, call: Callable[[], Awaitable[_T]]) -> _T:
        remaining = self._deadline - anyio.current_time()
        if remaining <= 0:
            raise _OutOfTime
        with anyio.move_on_after(remaining):
            return await call()
        raise _OutOfTime

    def _timed(self, step: str, started: float) -> None:
        self.report.steps.append((step, time.perf_counter() - started))

    # -- failures ----------------------------------------------------------------------------------

    def _fail(self, reason: str) -> None:
        if self.report.failure is None:
            self.report.failure = reason

    async def _fail_from(self, exc: MCPError) -> None:
        if exc.code != types.CONNECTION_CLOSED:
            self._fail(f"{self.step}: {self._error(exc)}")
            return
        server = self.server
        if server is None:
            self._fail(f"{self.step}: the connection closed")
            return
        if server.garbage is not None:
            self._fail(f"{self.step}: the server wrote to stdout what is not JSON-RPC: {server.garbage}")
            return
        code = await server.exit_code(1.0)
        if code is None:
            self._fail(f"{self.step}: the server closed its stdout")
        elif code < 0:
            self._fail(f"{self.step}: the server was killed by signal {-code}")
        else:
            self._fail(f"{self.step}: the server exited with code {code}")

    def _error(self, exc: MCPError) -> str:
        return _error(exc, self.http_error)

    def _explain(self, leaf: BaseException) -> str:
        if isinstance(leaf, _Stop):
            return self.report.failure or f"{self.step}: stopped"
        if isinstance(leaf, _OutOfTime):
            return f"no answer to {self.step} within {self.budget:.1f} s (the run's deadline)"
        if isinstance(leaf, OSError) and self.step == "connect" and isinstance(self.plan.endpoint, Stdio):
            return f"cannot start {self.plan.endpoint.argv[0]}: {leaf.strerror or leaf}"
        if isinstance(leaf, MCPError):
            return f"{self.step}: {self._error(leaf)}"
        if isinstance(leaf, httpx2.HTTPError):
            return f"{self.step}: cannot reach {self.report.where}: {_text(leaf)}"
        if isinstance(leaf, OSError):
            return f"{self.step}: {leaf.strerror or leaf}"
        return f"{self.step}: {_text(leaf)}"


def result_of(report: Report, plan: Plan) -> CheckResult:
    metrics: dict[str, float] = {"time": round(report.total, 6)}
    for step, seconds in report.steps:
        key = _METRIC.get(step, step)
        metrics[f"{key}_time"] = round(metrics.get(f"{key}_time", 0.0) + seconds, 6)
    if report.era is not None:
        metrics["modern"] = 1.0 if report.era == "modern" else 0.0
    if report.listed:
        metrics["tools"] = float(len(report.tools))
        metrics["tools_pages"] = float(report.pages)

    where = f"{report.transport} {report.where}"
    if report.failure is not None:
        status, summary = Status.critical, f"{report.failure} ({where})"
    else:
        name = report.server or "unnamed server"
        summary = (
            f"{name}: protocol {report.version} ({report.era}), {_count(len(report.tools), 'tool')}, "
            f"{report.total:.2f} s"
        )
        status = Status.ok
        if report.call_failed:
            status = Status.critical
            summary = f"{report.call}; {summary}"
        else:
            slow = _latency_status(report.total, plan.warn_latency, plan.crit_latency)
            if slow is not Status.ok:
                limit = plan.crit_latency if slow is Status.critical else plan.warn_latency
                summary += f", slower than {limit:g} s"
                status = slow
    lines = [summary, f"transport: {where}" + (f" (pid {report.pid})" if report.pid else "")]
    if report.version is not None:
        era = (
            "modern era: server/discover, no initialize, no ping"
            if report.era == "modern"
            else "handshake era: initialize, ping"
        )
        lines.append(f"protocol: {report.version} ({era})")
    if report.server is not None:
        lines.append(f"server: {report.server}")
    if report.listed:
        shown = ", ".join(sorted(report.tools))
        if len(shown) > 2000:
            shown = shown[:2000] + "…"
        pages = f" in {report.pages} pages" if report.pages > 1 else ""
        lines.append(f"tools ({len(report.tools)}{pages}): {shown or '-'}")
    if report.call is not None:
        lines.append(report.call)
    lines.append("latency: " + _latencies(report))
    lines.extend(f"note: {note}" for note in report.notes)
    if report.stderr:
        lines.append(f"server stderr (last {plan.stderr_limit} bytes at most):")
        lines.append(report.stderr)
    return CheckResult(status, "\n".join(lines), metrics)


def _latencies(report: Report) -> str:
    parts = [f"{step} {seconds * 1000:.0f} ms" for step, seconds in report.steps]
    parts.append(f"total {report.total:.2f} s")
    return ", ".join(parts)


def _latency_status(elapsed: float, warn: float | None, crit: float | None) -> Status:
    if crit is not None and elapsed >= crit:
        return Status.critical
    if warn is not None and elapsed >= warn:
        return Status.warning
    return Status.ok


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")


def _server_name(info: types.Implementation | None) -> str | None:
    if info is None:
        return None
    return f"{info.name} {info.version}".strip()


def _supported(exc: MCPError) -> list[str] | None:
    try:
        return types.UnsupportedProtocolVersionErrorData.model_validate(exc.error.data).supported
    except ValidationError:
        return None


def _error(exc: MCPError, http_error: str | None = None) -> str:
    text = f"error {exc.code} {exc.message}"
    if exc.error.data is not None:
        data = json.dumps(exc.error.data, default=str)
        text += f" {data[:300]}"
    return f"{http_error} ({text})" if http_error else text


def _first_error(exc: ValidationError) -> str:
    err = exc.errors()[0]
    where = ".".join(str(part) for part in err["loc"])
    return f"{where}: {err['msg']}" if where else str(err["msg"])


def _content_text(result: types.CallToolResult) -> str:
    texts = [block.text for block in result.content if isinstance(block, types.TextContent)]
    text = " ".join(" ".join(texts).split())
    return text if len(text) <= 200 else text[:200] + "…"


def _leaf(exc: BaseException) -> BaseException:
    """The first real error inside (nested) exception groups."""
    while isinstance(exc, BaseExceptionGroup):
        inner = [e for e in exc.exceptions if not isinstance(e, anyio.get_cancelled_exc_class())]
        exc = (inner or list(exc.exceptions))[0]
    return exc


def _text(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__
