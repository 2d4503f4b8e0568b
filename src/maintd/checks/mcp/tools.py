"""The server's tools: ``tools/list`` following ``nextCursor`` to the end, the expected ones present, and
the one optional ``tools/call``."""

from __future__ import annotations

import functools
import time
from typing import Any

import mcp_types as types
from mcp.client.session import ClientSession
from mcp.shared.exceptions import MCPError

from maintd.checks.mcp.conversation import Conversation, Stop

MAX_PAGES = 1000  # tools/list pages followed before the listing counts as endless


async def list_tools(conv: Conversation, session: ClientSession) -> None:
    conv.step = "tools/list"
    conv.http_error = None
    started = time.perf_counter()
    names: list[str] = []
    seen: set[str] = set()
    try:
        await _pages(conv, session, names, seen)
    finally:
        conv.timed("tools/list", started)
    conv.report.tools = names
    conv.report.listed = True


async def _pages(conv: Conversation, session: ClientSession, names: list[str], seen: set[str]) -> None:
    cursor: str | None = None
    while True:
        params = types.PaginatedRequestParams(cursor=cursor) if cursor is not None else None
        page = await conv.within_budget(functools.partial(session.list_tools, params=params))
        conv.report.pages += 1
        names.extend(tool.name for tool in page.tools)
        cursor = page.next_cursor
        if cursor is None:
            break
        if cursor in seen:
            conv.fail(f"tools/list: the server repeats the cursor {cursor!r}; the listing never ends")
            raise Stop
        if conv.report.pages >= MAX_PAGES:
            conv.fail(f"tools/list: still more after {MAX_PAGES} pages; the listing never ends")
            raise Stop
        seen.add(cursor)


def check_tools(conv: Conversation) -> None:
    have = set(conv.report.tools)
    missing = [name for name in conv.plan.expect_tools if name not in have]
    if missing:
        conv.fail(f"missing expected tools: {', '.join(missing)}")
        raise Stop
    if len(conv.report.tools) < conv.plan.min_tools:
        conv.fail(f"{len(conv.report.tools)} tools, fewer than min_tools {conv.plan.min_tools}")
        raise Stop


async def call_tool(conv: Conversation, session: ClientSession, name: str, arguments: dict[str, Any]) -> None:
    if conv.plan.dry_run:
        conv.report.call = f"dry run: did not call {name} (a tool call may change things)"
        return
    try:
        result = await conv.timed_call("tools/call", lambda: session.call_tool(name, arguments))
    except MCPError as exc:
        if exc.code == types.CONNECTION_CLOSED:
            raise
        conv.report.call = f"tools/call {name}: {conv.error(exc)}"
        conv.report.call_failed = True
        return
    if not isinstance(result, types.CallToolResult):
        conv.report.call = f"tools/call {name}: unexpected {type(result).__name__}"
        conv.report.call_failed = True
        return
    text = _content_text(result)
    if result.is_error:
        conv.report.call = f"tools/call {name} returned an error: {text}"
        conv.report.call_failed = True
    else:
        conv.report.call = f"tools/call {name}: ok ({text})" if text else f"tools/call {name}: ok"


def _content_text(result: types.CallToolResult) -> str:
    texts = [block.text for block in result.content if isinstance(block, types.TextContent)]
    text = " ".join(" ".join(texts).split())
    return text if len(text) <= 200 else text[:200] + "…"
