"""A real MCP server on the SDK (MCPServer, streamable HTTP) for the tests.

    python -m tests.mcp_support.http_server [--page-size N] [--token T]

Binds a free port on 127.0.0.1, prints it on the first line of stdout, then serves
``/mcp`` until killed. MCPServer lists all tools in one page; this subclass pages
``tools/list`` (cursor = offset) so clients must follow ``nextCursor``. With
``--token`` every request needs ``Authorization: Bearer T`` (else HTTP 401).
A request header ``X-Test-Hang: tools/list`` makes tools/list, and the session's
DELETE, hang forever.
"""

from __future__ import annotations

import argparse
import socket
import sys
from typing import Any

import anyio
import uvicorn
from mcp.server.mcpserver import MCPServer
from mcp_types import ListToolsResult, PaginatedRequestParams

FILLERS = 9  # with echo, add and fail: 12 tools


class PagedServer(MCPServer):
    page_size = 5

    async def _handle_list_tools(self, ctx: Any, params: PaginatedRequestParams | None) -> ListToolsResult:
        if ctx.request is not None and ctx.request.headers.get("x-test-hang") == "tools/list":
            await anyio.sleep(3600)  # a server stuck mid-conversation
        tools = sorted(await self.list_tools(), key=lambda tool: tool.name)
        start = int(params.cursor) if params is not None and params.cursor else 0
        end = start + self.page_size
        return ListToolsResult(tools=tools[start:end], next_cursor=str(end) if end < len(tools) else None)


def build(page_size: int) -> PagedServer:
    server = PagedServer("maintd-test-server", version="1.2.3")
    server.page_size = page_size

    @server.tool()
    def echo(text: str) -> str:
        """Return the text."""
        return text

    @server.tool()
    def add(a: int, b: int) -> int:
        """Add two numbers."""
        return a + b

    @server.tool()
    def fail(reason: str = "it broke") -> str:
        """Always fails."""
        raise RuntimeError(reason)

    for i in range(1, FILLERS + 1):
        server.add_tool(lambda: "ok", name=f"filler_{i:02d}", description="a tool to make the listing long")
    return server


def bearer_guard(app: Any, token: str) -> Any:
    expected = f"Bearer {token}".encode()

    async def guarded(scope: dict[str, Any], receive: Any, send: Any) -> None:
        headers = dict(scope.get("headers", []))
        if scope["type"] == "http" and scope["method"] == "DELETE" and b"x-test-hang" in headers:
            await anyio.sleep(3600)  # stuck: ending the session never returns
        if scope["type"] == "http" and headers.get(b"authorization") != expected:
            await send(
                {"type": "http.response.start", "status": 401, "headers": [(b"content-type", b"text/plain")]}
            )
            await send({"type": "http.response.body", "body": b"missing or wrong bearer token"})
            return
        await app(scope, receive, send)

    return guarded


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--page-size", type=int, default=5)
    parser.add_argument("--token")
    args = parser.parse_args()
    app: Any = build(args.page_size).streamable_http_app()
    if args.token:
        app = bearer_guard(app, args.token)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    print(sock.getsockname()[1], flush=True)
    config = uvicorn.Config(app, log_level="warning", lifespan="on")
    uvicorn.Server(config).run(sockets=[sock])


if __name__ == "__main__":
    sys.exit(main())
