"""A small HTTP/1.1 server for the intake: asyncio protocol + httptools (llhttp), nothing else.

The intake answers a handful of routes with small JSON bodies, so the general machinery of
an ASGI server is a large part of its CPU per request (uvicorn: ASGI messages, a header list
per request, the head and the body of each answer written with a syscall each) and of its
memory (uvicorn imports click and more). Here a parsed request goes to the handler whole, and
its answer leaves in one write: 20,000 alerts at batch 1 took 98-100 us of CPU per request
against 112-130 us on uvicorn, and RSS 34 MB against 41 MB (alternated runs, load 5-7).

What it does: keep-alive (idle connections closed after ``KEEP_ALIVE`` s), pipelined
requests answered in order, chunked request bodies, ``Expect: 100-continue``, bodies kept up
to ``MAX_BODY`` (longer ones are read and dropped, the handler told, so the route answers
413), a 400 for what llhttp cannot parse, a 431 for a head over ``MAX_HEAD``, a graceful
stop that finishes the requests in hand. No TLS: put a proxy in front.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any, NamedTuple

import httptools

log = logging.getLogger(__name__)

KEEP_ALIVE = 5.0  # seconds an idle connection stays open (uvicorn's default)
MAX_BODY = 4 * 1024 * 1024  # the longest route limit; longer bodies are counted, not kept
MAX_HEAD = 64 * 1024  # bytes of URL and headers
WANTED = {  # header names as sent → as kept
    name.encode(): name for name in ("content-type", "content-length", "authorization", "expect")
}
MAX_PIPELINED = 16  # requests parsed ahead of their answers before reading pauses
REASONS = {
    200: b"OK",
    202: b"Accepted",
    400: b"Bad Request",
    401: b"Unauthorized",
    403: b"Forbidden",
    404: b"Not Found",
    405: b"Method Not Allowed",
    413: b"Payload Too Large",
    415: b"Unsupported Media Type",
    422: b"Unprocessable Entity",
    429: b"Too Many Requests",
    431: b"Request Header Fields Too Large",
    500: b"Internal Server Error",
    503: b"Service Unavailable",
}


@dataclass(eq=False, slots=True)
class Request:
    method: str
    path: str
    headers: dict[str, str]  # of WANTED only, by lower-case name; the first of each
    body: bytes = b""
    length: int = 0  # bytes received, kept or not
    too_long: bool = False  # over MAX_BODY: ``body`` holds nothing


class Response(NamedTuple):
    status: int
    body: bytes
    media: bytes
    headers: tuple[tuple[str, str], ...] = ()


Handler = Callable[[Request], Coroutine[Any, Any, Response]]


class _Parsing:
    """The request being parsed (a plain class: one is made per request)."""

    __slots__ = ("body", "head", "headers", "headers_done", "length", "received", "url")

    def __init__(self) -> None:
        self.url = bytearray()
        self.headers: dict[str, str] = {}
        self.body: list[bytes] = []  # as llhttp hands it over: usually one piece
        self.head = 0  # bytes of URL and headers
        self.received = 0  # bytes received while the head was incomplete
        self.headers_done = False
        self.length = 0


class Server:
    """Serve ``handler`` on a socket until ``stop()``; requests in hand are answered first."""

    def __init__(self, handler: Handler, *, keep_alive: float = KEEP_ALIVE) -> None:
        self.handler = handler
        self.keep_alive = keep_alive
        self.connections: set[Connection] = set()
        self._server: asyncio.Server | None = None
        self._sweeper: asyncio.TimerHandle | None = None
        self._date = b""
        self._date_at = 0.0

    async def start(self, host: str, port: int) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(lambda: Connection(self), host, port, reuse_address=True)
        self._sweep()

    async def stop(self, grace: float = 10.0) -> None:
        """Take no new connections, close idle ones, and wait up to ``grace`` s for the rest."""
        if self._sweeper is not None:
            self._sweeper.cancel()
        if self._server is not None:
            self._server.close()
        deadline = time.monotonic() + grace
        while True:
            for connection in list(self.connections):
                if connection.idle:
                    connection.close()
            if not self.connections or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.01)  # a busy connection closes when its answer is written
        for connection in list(self.connections):
            connection.close()

    def date(self) -> bytes:
        """The Date header's value, formatted once a second."""
        now = time.time()
        if now - self._date_at >= 1.0:
            self._date_at = float(int(now))
            self._date = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(now)).encode()
        return self._date

    def _sweep(self) -> None:
        """Once a second: close connections idle for longer than ``keep_alive`` (one timer for all)."""
        now = time.monotonic()
        for connection in list(self.connections):
            # Not answering anything and silent (a request head may be half sent): closed.
            if not connection.busy and not connection.ready and now - connection.last_seen > self.keep_alive:
                connection.close()
        self._sweeper = asyncio.get_running_loop().call_later(1.0, self._sweep)


class Connection(asyncio.Protocol):
    """One client connection: parse, hand each request to the handler in order, write answers."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpRequestParser(self)
        self.parsing = _Parsing()
        self.ready: collections.deque[tuple[Request, bool]] = collections.deque()  # (request, keep-alive)
        self.busy = False
        self.closing = False
        self.last_seen = time.monotonic()

    @property
    def idle(self) -> bool:
        return not self.busy and not self.ready and not self.parsing.received

    # asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.server.connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.server.connections.discard(self)
        self.closing = True

    def data_received(self, data: bytes) -> None:
        self.last_seen = time.monotonic()
        if not self.parsing.headers_done:
            self.parsing.received += len(data)  # bounds what a head sent in many pieces gathers
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._fail(400, b"upgrades are not supported")
        except httptools.HttpParserError as exc:
            self._fail(400, f"bad request: {exc}".encode())
        else:
            if self.parsing.received > MAX_HEAD and not self.parsing.headers_done:
                self._fail(431, b"the request head is over 64 KiB")
            elif len(self.ready) > MAX_PIPELINED and self.transport is not None:
                self.transport.pause_reading()  # resumed as the answers catch up

    # httptools callbacks

    def on_url(self, url: bytes) -> None:
        self.parsing.url += url
        self.parsing.head += len(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self.parsing.head += len(name) + len(value)
        # Only the headers a route reads are kept (the first of each, as Starlette's ``get``).
        key = WANTED.get(name) or WANTED.get(name.lower())
        if key is not None and key not in self.parsing.headers:
            self.parsing.headers[key] = value.decode("latin-1")

    def on_headers_complete(self) -> None:
        self.parsing.headers_done = True
        if self.parsing.headers.get("expect", "").lower() == "100-continue" and self.transport is not None:
            self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")

    def on_body(self, body: bytes) -> None:
        parsing = self.parsing
        parsing.length += len(body)
        if parsing.length <= MAX_BODY:
            parsing.body.append(body)
        elif parsing.body:
            parsing.body.clear()  # over every route's limit: counted from here, not kept

    def on_message_complete(self) -> None:
        parsing = self.parsing
        if parsing.head > MAX_HEAD:
            self._fail(431, b"the request head is over 64 KiB")
            return
        url = bytes(parsing.url)
        if url.startswith(b"/") and b"?" not in url and b"#" not in url:
            path = url.decode("latin-1")
        else:
            path = (httptools.parse_url(url).path or b"").decode("latin-1")
        request = Request(
            self.parser.get_method().decode("latin-1"),
            _unquote(path),
            parsing.headers,
            parsing.body[0] if len(parsing.body) == 1 else b"".join(parsing.body),
            parsing.length,
            parsing.length > MAX_BODY,
        )
        self.parsing = _Parsing()
        self.ready.append((request, self.parser.should_keep_alive()))
        if not self.busy:
            self._next()

    # answering, one request at a time

    def _next(self) -> None:
        if not self.ready or self.closing:
            return
        self.busy = True
        request, keep_alive = self.ready.popleft()
        if len(self.ready) <= MAX_PIPELINED and self.transport is not None:
            self.transport.resume_reading()
        asyncio.get_running_loop().create_task(self._answer(request, keep_alive))

    async def _answer(self, request: Request, keep_alive: bool) -> None:
        try:
            response = await self.server.handler(request)
        except Exception:
            log.exception("an intake request failed")
            body = b'{"type":"about:blank","title":"Internal server error","status":500}'
            response = Response(500, body, b"application/problem+json")
        self.busy = False
        self.last_seen = time.monotonic()
        self._write(response, keep_alive)
        if keep_alive:
            self._next()
        else:
            self.close()

    def _write(self, response: Response, keep_alive: bool) -> None:
        if self.transport is None or self.closing:
            return
        head = [
            b"HTTP/1.1 %d %s\r\n" % (response.status, REASONS.get(response.status, b"Unknown")),
            b"date: %s\r\ncontent-type: %s\r\ncontent-length: %d\r\n"
            % (self.server.date(), response.media, len(response.body)),
        ]
        head += [b"%s: %s\r\n" % (k.lower().encode(), v.encode("latin-1")) for k, v in response.headers]
        if not keep_alive:
            head.append(b"connection: close\r\n")
        head.append(b"\r\n")
        self.transport.write(b"".join(head) + response.body)

    def _fail(self, status: int, detail: bytes) -> None:
        """Answer what cannot be parsed, and close: the rest of the stream cannot be trusted."""
        self._write(Response(status, detail, b"text/plain; charset=utf-8"), keep_alive=False)
        self.close()

    def close(self) -> None:
        self.closing = True
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()


def _unquote(path: str) -> str:
    """The path percent-decoded, as ASGI servers hand it over (an integration key never needs it)."""
    if "%" not in path:
        return path
    from urllib.parse import unquote

    return unquote(path)
