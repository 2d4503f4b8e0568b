"""The contract every task kind implements (checks observe, actions change things).

A kind is a folder: ``config.py``-style pydantic model + a class with
``async def run(ctx) -> CheckResult``, exported as ``KIND`` from its
``__init__``. See CONTRIBUTING.md for the checklist.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import importlib
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Protocol

from pydantic import BaseModel

from maintd.clock import Clock
from maintd.plan.models import Target, Task

if TYPE_CHECKING:
    import aiohttp

    from maintd.checks.http.client import HttpClient


class Status(StrEnum):
    """Nagios semantics: the exit codes 0, 1, 2, 3."""

    ok = "ok"
    warning = "warning"
    critical = "critical"
    unknown = "unknown"

    @classmethod
    def from_exit_code(cls, code: int) -> Status:
        return _BY_EXIT_CODE.get(code, cls.unknown)

    @property
    def rank(self) -> int:
        """Worse is higher: ok < warning < unknown < critical."""
        return _RANK[self]


_BY_EXIT_CODE = {0: Status.ok, 1: Status.warning, 2: Status.critical, 3: Status.unknown}
_RANK = {Status.ok: 0, Status.warning: 1, Status.unknown: 2, Status.critical: 3}


def format_bytes(value: float) -> str:
    """``512 B``, ``1.5 KiB`` ... ``2.0 TiB`` for run summaries; a negative size keeps its sign."""
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(value) < 1024:
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TiB"


@dataclass(frozen=True)
class Change:
    """One thing an action changed (or, in a dry run, would change): the audit trail's unit."""

    action: str  # what was done: compress, delete, vacuum, restore, ...
    target: str  # to what: a path, a table, a database
    detail: dict[str, Any] = field(default_factory=dict)  # sizes, counts, checksums; JSON values

    def as_json(self) -> dict[str, Any]:
        return {
            "action": self.action,
            "target": self.target,
            **({"detail": self.detail} if self.detail else {}),
        }


@dataclass
class CheckResult:
    status: Status
    output: str = ""
    metrics: dict[str, float] = field(default_factory=dict)
    changes: list[Change] = field(default_factory=list)  # actions: recorded as one audit event per run
    memo: dict[str, Any] | None = None
    """Saved for the next run of this task on this target (``await ctx.memo()``); None keeps the old
    one. JSON values only; a dry run, a timeout or a memo over ``MEMO_LIMIT`` bytes saves nothing."""


MEMO_LIMIT = 1 << 20


class Resources:
    """Shared, lazily made clients for all runs: the ``http`` check's client, and aiohttp sessions
    (one pooled, one not) for the kinds that speak HTTP to an API."""

    def __init__(self) -> None:
        self._http: dict[bool, aiohttp.ClientSession] = {}
        self._http_client: HttpClient | None = None

    @property
    def http_client(self) -> HttpClient:
        """The ``http`` check's own client (see ``maintd.checks.http.client``), its DNS cache and
        its pool of idle connections shared by all runs."""
        if self._http_client is None:
            from maintd.checks.http.client import HttpClient  # the http package imports this module

            self._http_client = HttpClient()
        return self._http_client

    def http(self, *, keep_alive: bool = True) -> aiohttp.ClientSession:
        """The shared HTTP session. ``keep_alive``: connections are pooled and reused while idle
        (HTTP keep-alive); otherwise every request opens a new connection, sends
        ``Connection: close`` and closes it after the response."""
        session = self._http.get(keep_alive)
        if session is None or session.closed:
            import aiohttp  # ~10 MB: only processes running a kind that talks to an API pay for it

            session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=256, ttl_dns_cache=60, force_close=not keep_alive),
                headers={"User-Agent": "maintd"},
            )
            self._http[keep_alive] = session
        return session

    async def aclose(self) -> None:
        for session in self._http.values():
            await session.close()
        if self._http_client is not None:
            await self._http_client.aclose()

    @classmethod
    @contextlib.asynccontextmanager
    async def open(cls) -> AsyncIterator[Resources]:
        res = cls()
        try:
            yield res
        finally:
            await res.aclose()


@dataclass(frozen=True)
class RunSample:
    """An earlier finished run of the same task on the same target."""

    started_at: datetime
    status: Status
    metrics: dict[str, float]


async def _no_history(limit: int) -> list[RunSample]:
    return []


async def _no_memo() -> dict[str, Any]:
    return {}


class ProcessTracker(Protocol):
    """Where a kind reports the process groups it starts, so that a restart after a crash
    can kill what the dead maintd left running."""

    def started(self, pgid: int) -> None: ...

    def ended(self, pgid: int) -> None: ...


class _NoTracking:
    def started(self, pgid: int) -> None:
        pass

    def ended(self, pgid: int) -> None:
        pass


@dataclass
class RunContext:
    task: Task
    target: Target
    config: Any  # the kind's validated config model
    clock: Clock
    deadline: datetime
    resources: Resources
    dry_run: bool = False
    processes: ProcessTracker = field(default_factory=_NoTracking)
    history: Callable[[int], Awaitable[list[RunSample]]] = _no_history
    """``await ctx.history(n)``: the last n finished runs here, newest first (for rates and deltas)."""
    memo: Callable[[], Awaitable[dict[str, Any]]] = _no_memo
    """``await ctx.memo()``: what the previous run here saved as ``CheckResult.memo`` ({} at first):
    for state a run's metrics cannot hold (file offsets, the findings already reported)."""

    def secret(self, name: str) -> str:
        """The value behind the target's secret reference ``name``; never log it."""
        try:
            ref = self.target.secrets[name]
        except KeyError:
            raise LookupError(f"target {self.target.name} has no secret named {name!r}") from None
        return ref.resolve()

    def seconds_left(self) -> float:
        return max(0.0, (self.deadline - self.clock.now()).total_seconds())


class Check(Protocol):
    async def run(self, ctx: RunContext) -> CheckResult:
        """Run once against ``ctx.target``.

        Return a result for every outcome of the thing checked (a refused
        connection is CRITICAL, not an exception). Raise only for bugs; the
        runner records those as UNKNOWN. Must not change anything when
        ``ctx.dry_run`` is set, and must leave nothing running when cancelled.
        """


@dataclass(frozen=True)
class Kind:
    """A registered task kind."""

    name: str
    config: type[BaseModel]
    build: Callable[[Any], Check]
    summary: str
    changes: Callable[[Any], bool] = lambda _config: False


class LazyCheck:
    """A check whose code lives in ``module`` (``async def run(config, ctx)``), imported on first use.

    Kinds with heavy client libraries (psycopg, cryptography, redis-py, dnspython) register
    through this, so start-up does not pay for kinds a plan never runs; the import happens
    once, in a worker thread, off the event loop.
    """

    def __init__(self, module: str, config: Any) -> None:
        self.module = module
        self.config = config

    async def run(self, ctx: RunContext) -> CheckResult:
        if self.module not in sys.modules:
            await asyncio.to_thread(importlib.import_module, self.module)
        run: Callable[[Any, RunContext], Awaitable[CheckResult]] = sys.modules[self.module].run
        return await run(self.config, ctx)


def lazy(module: str) -> Callable[[Any], Check]:
    """``Kind(build=lazy("maintd.checks.x.check"), ...)``."""
    return functools.partial(LazyCheck, module)
