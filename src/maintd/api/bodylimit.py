"""A bound on every request body, so no route reads an unbounded one into memory.

The alert routes bound their own bodies (their limits are sized for batches of alerts, and they
count as they read: ``maintd.api.ingest``); every other route takes at most ``MAX_BODY`` bytes.
A body that says it is longer is refused before a byte is read; one that does not say (chunked)
is counted as it arrives and refused once over, with the same 413 problem.
"""

from __future__ import annotations

from collections.abc import Iterable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from maintd.api.problems import problem

MAX_BODY = 1024 * 1024  # a post-mortem's whole text is a few tens of KB


class BodyLimit:
    def __init__(self, app: ASGIApp, *, limit: int = MAX_BODY, own_limits: Iterable[str] = ()) -> None:
        """``own_limits``: path prefixes whose routes bound their bodies themselves."""
        self.app, self.limit, self.own_limits = app, limit, tuple(own_limits)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(self.own_limits):
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.limit:
            await _refuse(scope, receive, send, f"the body is {declared} bytes; the limit is {self.limit}")
            return
        await self.app(scope, *_counting(scope, receive, send, self.limit))


def _content_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            return int(value) if value.isdigit() else None  # not a number: the server refuses it
    return None


def _counting(scope: Scope, receive: Receive, send: Send, limit: int) -> tuple[Receive, Send]:
    """``receive`` and ``send`` for a body that did not declare its length: once over ``limit``
    the 413 is sent, the app is told the client left, and whatever it sends after is dropped."""
    seen = 0
    refused = False
    started = False

    async def counted_receive() -> Message:
        nonlocal seen, refused
        message = await receive()
        if message["type"] == "http.request":
            seen += len(message.get("body", b""))
            if seen > limit and not started:
                refused = True
                await _refuse(scope, receive, send, f"the body is over the limit of {limit} bytes")
                return {"type": "http.disconnect"}
        return message

    async def guarded_send(message: Message) -> None:
        nonlocal started
        if refused:
            return
        started = started or message["type"] == "http.response.start"
        await send(message)

    return counted_receive, guarded_send


async def _refuse(scope: Scope, receive: Receive, send: Send, detail: str) -> None:
    await problem(413, "Payload too large", detail)(scope, receive, send)
