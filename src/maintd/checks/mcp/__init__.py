"""``mcp``: the health of an MCP server (the seed's ``mcp health-check $server``).

Talks to the server as a client would, over stdio (maintd starts the server
from the target's ``connection.command`` + ``args`` in its own process group
and kills the group when the check ends) or streamable HTTP
(``connection.url``). It negotiates the protocol era the way the spec asks:
``server/discover`` first (the modern era, 2026-07-28: no initialize, no ping),
falling back to the handshake era (initialize → notifications/initialized →
ping); then ``tools/list`` following ``nextCursor``, and optionally one
``tools/call``. Every outcome is a result with the reason; the MCP SDK is
imported only when a check runs.
"""

from __future__ import annotations

import asyncio
import importlib
import os
from typing import Any, Literal, get_args

from pydantic import Field

from maintd.checks.base import CheckResult, Kind, RunContext, Status
from maintd.checks.mcp.endpoint import Http, Stdio
from maintd.plan.base import StrictModel
from maintd.plan.types import Duration

# Known protocol revisions (mcp_types.version; a test keeps this in step with the installed SDK).
HANDSHAKE_VERSIONS = ("2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25")
MODERN_VERSIONS = ("2026-07-28",)
Protocol = Literal["auto", "legacy", "2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25", "2026-07-28"]
PROTOCOLS = get_args(Protocol)

# What a stdio server inherits from maintd's environment (the SDK's choice too): never maintd's secrets.
INHERITED_ENV = ("HOME", "LOGNAME", "PATH", "SHELL", "TERM", "USER")
_RESERVE = 1.0  # seconds of the run's time kept back to stop the server and write the result


class ToolCall(StrictModel):
    name: str = Field(min_length=1, description="the tool to call")
    arguments: dict[str, Any] = Field(default={}, description="its arguments")


class McpConfig(StrictModel):
    transport: Literal["stdio", "http"] | None = Field(
        default=None,
        description="stdio or http; default: stdio if the target's connection has command, http if url",
    )
    protocol: Protocol = Field(
        default="auto",
        description="auto (server/discover, then the handshake), legacy (handshake only) or a pinned version",
    )
    expect_tools: list[str] = Field(default=[], description="tool names that must be listed")
    min_tools: int = Field(default=0, ge=0, description="fewer tools than this is critical")
    warn_latency: Duration | None = Field(default=None, description="warning at or above this total time")
    crit_latency: Duration | None = Field(default=None, description="critical at or above this total time")
    call_tool: ToolCall | None = Field(
        default=None, description="one tools/call that must not fail; makes the task an action"
    )
    bearer_secret: str | None = Field(
        default=None, description="target secret sent as Authorization: Bearer (http)"
    )
    header_secrets: dict[str, str] = Field(default={}, description="header name → target secret (http)")
    env_secrets: dict[str, str] = Field(
        default={}, description="environment variable → target secret (stdio)"
    )
    stderr_limit: int = Field(
        default=2048, ge=0, le=65536, description="bytes of the server's stderr tail kept (stdio)"
    )


class McpCheck:
    def __init__(self, config: McpConfig) -> None:
        self.config = config

    async def run(self, ctx: RunContext) -> CheckResult:
        cfg = self.config
        try:
            endpoint = _endpoint(cfg, ctx)
        except (ValueError, LookupError) as exc:
            return CheckResult(Status.unknown, str(exc))
        # The SDK takes half a second to import: the first check imports it off the event loop.
        await asyncio.to_thread(importlib.import_module, "maintd.checks.mcp.probe")
        from maintd.checks.mcp.probe import Plan, Probe

        left = ctx.seconds_left()
        plan = Plan(
            endpoint=endpoint,
            protocol=cfg.protocol,
            expect_tools=cfg.expect_tools,
            min_tools=cfg.min_tools,
            warn_latency=cfg.warn_latency.total_seconds() if cfg.warn_latency is not None else None,
            crit_latency=cfg.crit_latency.total_seconds() if cfg.crit_latency is not None else None,
            call_tool=(cfg.call_tool.name, cfg.call_tool.arguments) if cfg.call_tool else None,
            dry_run=ctx.dry_run,
            stderr_limit=cfg.stderr_limit,
        )
        budget = max(0.0, left - min(_RESERVE, left / 10))
        return await Probe(plan, budget, ctx.processes).run()


def _endpoint(cfg: McpConfig, ctx: RunContext) -> Stdio | Http:
    conn = ctx.target.connection
    name = ctx.target.name
    transport = cfg.transport
    if transport is None:
        if "command" in conn:
            transport = "stdio"
        elif "url" in conn:
            transport = "http"
        else:
            raise ValueError(
                f"target {name}'s connection has neither command (stdio) nor url (streamable HTTP)"
            )
    if transport == "stdio":
        command = conn.get("command")
        if not isinstance(command, str) or not command:
            raise ValueError(f"stdio: target {name}'s connection.command must be a program path")
        args = _strings(conn.get("args", []), f"target {name}'s connection.args")
        env = {key: os.environ[key] for key in INHERITED_ENV if key in os.environ}
        env.update(_mapping(conn.get("env", {}), f"target {name}'s connection.env"))
        env.update({var: ctx.secret(secret) for var, secret in cfg.env_secrets.items()})
        cwd = conn.get("cwd")
        if cwd is not None and not isinstance(cwd, str):
            raise ValueError(f"target {name}'s connection.cwd must be a path")
        return Stdio([command, *args], env, cwd)
    url = conn.get("url")
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        raise ValueError(f"http: target {name}'s connection.url must be an http(s) URL")
    headers = _mapping(conn.get("headers", {}), f"target {name}'s connection.headers")
    headers.update({header: ctx.secret(secret) for header, secret in cfg.header_secrets.items()})
    if cfg.bearer_secret is not None:
        headers["Authorization"] = f"Bearer {ctx.secret(cfg.bearer_secret)}"
    return Http(url, headers)


def _strings(value: Any, what: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str | int | float) for v in value):
        raise ValueError(f"{what} must be a list of strings")
    return [str(v) for v in value]


def _mapping(value: Any, what: str) -> dict[str, str]:
    if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
        raise ValueError(f"{what} must be a mapping of names to strings")
    return {k: str(v) for k, v in value.items()}


def _changes(config: Any) -> bool:
    return config.call_tool is not None


KIND = Kind(
    name="mcp",
    config=McpConfig,
    build=McpCheck,
    summary="MCP server health over stdio or streamable HTTP: protocol era, server info, tools, latency",
    changes=_changes,
)
