"""What one check carries through its steps: the plan, the report so far, the step under way and the
deadline; each step's latency, and the first failure, which is the one reported."""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import anyio
from mcp.shared.exceptions import MCPError
from pydantic import ValidationError

from maintd.checks.mcp.endpoint import Http, Stdio

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


class Stop(Exception):
    """Ends the conversation with ``report.failure`` set."""


class OutOfTime(Exception):
    pass


class Conversation:
    def __init__(self, plan: Plan, budget: float) -> None:
        self.plan = plan
        self.budget = budget
        ep = plan.endpoint
        self.report = Report("stdio" if isinstance(ep, Stdio) else "http", ep.describe())
        self.step = "connect"
        self.http_error: str | None = None
        self.deadline = 0.0

    async def timed_call(self, step: str, call: Callable[[], Awaitable[_T]]) -> _T:
        self.step = step
        self.http_error = None
        started = time.perf_counter()
        try:
            return await self.within_budget(call)
        finally:  # an error answer has a latency too
            self.timed(step, started)

    async def within_budget(self, call: Callable[[], Awaitable[_T]]) -> _T:
        remaining = self.deadline - anyio.current_time()
        if remaining <= 0:
            raise OutOfTime
        with anyio.move_on_after(remaining):
            return await call()
        raise OutOfTime

    def timed(self, step: str, started: float) -> None:
        self.report.steps.append((step, time.perf_counter() - started))

    def fail(self, reason: str) -> None:
        if self.report.failure is None:
            self.report.failure = reason

    def error(self, exc: MCPError) -> str:
        return error_text(exc, self.http_error)


def error_text(exc: MCPError, http_error: str | None = None) -> str:
    text = f"error {exc.code} {exc.message}"
    if exc.error.data is not None:
        data = json.dumps(exc.error.data, default=str)
        text += f" {data[:300]}"
    return f"{http_error} ({text})" if http_error else text


def first_error(exc: ValidationError) -> str:
    err = exc.errors()[0]
    where = ".".join(str(part) for part in err["loc"])
    return f"{where}: {err['msg']}" if where else str(err["msg"])
