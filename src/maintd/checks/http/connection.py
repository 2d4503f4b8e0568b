"""One HTTP/1.1 connection of the ``http`` check's client: a request head written, the answer read.

``Connection`` is the asyncio protocol under ``HttpClient`` (maintd.checks.http.client), which
dials, pools and redirects. httptools parses the answer and calls the ``on_*`` methods; this
keeps the head within ``HEAD_LIMIT``, decodes a gzip or deflate body within the caller's limit,
and says whether the connection may be reused. Every failure is an ``HttpError``.
"""

from __future__ import annotations

import asyncio
import zlib
from typing import Any, NamedTuple

import httptools

HEAD_LIMIT = 64 * 1024  # bytes of status line and headers; a longer head is refused

# The response headers anyone here reads; the others are not decoded.
_READ = frozenset(
    {b"content-type", b"content-length", b"transfer-encoding", b"content-encoding", b"location"}
)


class HttpError(Exception):
    """The request failed; the message is the reason, ready for a summary."""


class Response(NamedTuple):
    status: int
    headers: dict[str, str]  # the names in _READ, lower-cased; a repeated header keeps its last value
    body: bytes  # decoded, at most ``limit`` bytes; empty when the body was not asked for
    cut: bool  # the body went on past ``limit``


class Connection(asyncio.Protocol):
    """One connection and the answer being read on it (httptools calls the ``on_*`` methods)."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self._waiter: asyncio.Future[None] | None = None

    # -- asyncio's side --

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        if self._waiter is None or self._waiter.done():
            self.close()  # nothing asked: an idle connection the server talks on is not reused
            return
        self._answered = True
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._fail(HttpError("the server switched protocols"))
        except httptools.HttpParserError as exc:
            self._fail(HttpError(f"not an HTTP response: {exc}"))
        if not self._head_done:
            self._head_bytes += len(data)
            if self._head_bytes > HEAD_LIMIT:
                self._fail(HttpError(f"the response head is longer than {HEAD_LIMIT} bytes"))

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self._waiter is None or self._waiter.done():
            return
        if not self._answered:
            self._wake()  # exchange() tells its caller: nothing came back
        elif self._head_done and not self._framed:
            self._wake()  # no length, not chunked: the body ends with the connection
        else:
            detail = f": {exc}" if exc else ""
            self._fail(HttpError(f"the server closed the connection mid-response{detail}"))

    # -- the exchange --

    async def exchange(self, head: bytes, limit: int) -> bool:
        """Send ``head`` and read the answer: its head, and its body up to ``limit`` bytes when
        ``limit`` > 0. False when the connection ended before a byte of it came back."""
        self._parser = httptools.HttpResponseParser(self)
        self._answered = self._head_done = self._complete = self._cut = self._framed = self._keep = False
        self._error: HttpError | None = None
        self._head_bytes = 0
        self._headers: dict[str, str] = {}
        self._body = bytearray()
        self._limit = limit
        self._decoder: Any = None  # zlib's decompressor, for a gzip or deflate body
        if self.closed or self.transport is None:
            return False
        self._waiter = asyncio.get_running_loop().create_future()
        self.transport.write(head)
        await self._waiter
        if self._error is not None:
            raise self._error
        return self._answered

    def response(self, wanted: int) -> Response:
        """The answer read by ``exchange``, with the body's first ``wanted`` bytes (none for 0)."""
        body = bytes(self._body[:wanted]) if wanted else b""
        return Response(self._parser.get_status_code(), self._headers, body, bool(wanted) and self._cut)

    def reusable(self) -> bool:
        return not self.closed and self._complete and not self._cut and self._keep

    def close(self) -> None:
        if self.transport is not None and not self.closed:
            self.transport.close()
        self.closed = True

    # -- httptools' callbacks --

    def on_header(self, name: bytes, value: bytes) -> None:
        name = name.lower()
        if name in _READ:
            self._headers[name.decode("latin-1")] = value.decode("latin-1")

    def on_headers_complete(self) -> None:
        if 100 <= self._parser.get_status_code() < 200:
            self._headers = {}  # an interim answer (103 Early Hints): the real one follows
            return
        self._head_done = True
        headers = self._headers
        self._framed = "content-length" in headers or "chunked" in headers.get("transfer-encoding", "")
        coding = headers.get("content-encoding", "").strip().lower()
        if not self._limit:
            self._wake()
        elif coding in ("gzip", "x-gzip", "deflate"):
            self._decoder = zlib.decompressobj(zlib.MAX_WBITS | 32)  # gzip or zlib, by its header
        elif coding not in ("", "identity"):
            self._fail(HttpError(f"cannot decode the body's Content-Encoding {coding!r}"))

    def on_body(self, chunk: bytes) -> None:
        if self._cut or not self._limit:
            return
        room = self._limit + 1 - len(self._body)  # >= 1: the body is cut once it passes the limit
        if self._decoder is not None:
            try:
                chunk = self._decoder.decompress(chunk, room)
            except zlib.error as exc:
                return self._fail(HttpError(f"the compressed body is corrupt: {exc}"))
        self._body += chunk[:room]
        if len(self._body) > self._limit or (self._decoder is not None and self._decoder.unconsumed_tail):
            self._cut = True  # read no further: the connection is closed, not reused
            self._wake()

    def on_message_complete(self) -> None:
        if not self._head_done:
            return  # the end of an interim answer
        if self._decoder is not None and not self._decoder.eof and not self._cut:
            return self._fail(HttpError("the compressed body is corrupt: it ends before its stream does"))
        self._complete = True
        self._keep = self._parser.should_keep_alive()  # only meaningful within this callback
        self._wake()

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    def _fail(self, error: HttpError) -> None:
        if self._error is None:
            self._error = error
        self._wake()
        self.close()
