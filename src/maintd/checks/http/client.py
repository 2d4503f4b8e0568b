"""The ``http`` check's client: one HTTP/1.1 request on asyncio's transports, parsed by httptools.

The check's cost is mostly its client's, and issue 3 weighs checks per CPU-second. A GET on a
new connection to nginx on loopback costs ~0.30-0.34 ms of CPU through an aiohttp session and
~0.16-0.18 ms here (2-core AMD EPYC, 2026-11-28): aiohttp builds a request object, a connector
lease, a stream reader and trace hooks for every request, none of which one status code needs.
This does what the check needs and nothing more: redirects, TLS with or without verification,
a capped body (gzip and deflate decoded within the cap), a DNS cache, and a pool of idle
connections for ``keep_alive``. No proxies (aiohttp's sessions ignored the environment too),
no cookies, no request body.

Every failure is an ``HttpError`` whose message says what and where, for the run's summary.
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
import socket
import ssl
import time
from collections import deque
from typing import NamedTuple
from urllib.parse import urljoin, urlsplit

from maintd.checks.http.connection import HEAD_LIMIT, Connection, HttpError, Response
from maintd.remembered import Remembered

__all__ = ["HEAD_LIMIT", "HttpClient", "HttpError", "Response"]

MAX_REDIRECTS = 10
DNS_TTL = 60.0  # seconds an address found is used (aiohttp's ttl_dns_cache was 60 too)
IDLE_TTL = 15.0  # seconds a pooled connection may idle before it is closed instead of reused
MAX_IDLE = 256  # idle connections kept, all endpoints together
PREPARED = 50_000  # requests kept prepared (a check per target: as many as the plan's targets)
DRAIN_LIMIT = 1 << 20  # bytes of an unwanted body read to keep its connection; past it, closed
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_NO_BODY = frozenset({"GET", "HEAD", "DELETE", "OPTIONS"})  # methods sent without Content-Length
_DEFAULT_HEADERS = {
    "user-agent": ("User-Agent", "maintd"),
    "accept": ("Accept", "*/*"),
    "accept-encoding": ("Accept-Encoding", "gzip, deflate"),
}


class Endpoint(NamedTuple):
    secure: bool
    host: str  # as connected to: a name, or an address without brackets
    port: int
    verify: bool


class HttpClient:
    """Requests over new or pooled connections; one per event loop (see ``Resources``)."""

    def __init__(self) -> None:
        self._addresses: Remembered[list[tuple[int, str]]] = Remembered(DNS_TTL)
        self._contexts: dict[bool, ssl.SSLContext] = {}
        self._idle: dict[Endpoint, deque[tuple[Connection, float]]] = {}
        self._idle_count = 0
        # Parsing the URL and writing the head cost ~15 % of a check: each is done once per request.
        self._prepared: dict[tuple[object, ...], tuple[Endpoint, bytes]] = {}
        self._literal: dict[str, list[tuple[int, str]]] = {}  # hosts that are addresses

    async def request(
        self,
        method: str,
        url: str,
        headers: dict[str, str],
        *,
        verify: bool = True,
        redirects: bool = True,
        body_limit: int = 0,
        keep_alive: bool = False,
    ) -> Response:
        """The final response to ``method url``; its body (up to ``body_limit`` bytes) only when
        ``body_limit`` > 0. ``keep_alive``: take and give back pooled connections."""
        for _ in range(MAX_REDIRECTS + 1):
            endpoint, head = self._prepare(method, url, headers, verify, keep_alive)
            wanted = body_limit if method != "HEAD" else 0
            response = await self._exchange(endpoint, head, wanted, keep_alive and method != "HEAD")
            location = response.headers.get("location")
            if not (redirects and response.status in _REDIRECTS and location):
                return response
            url = urljoin(url, location)
            method = _method_after(response.status, method)
        raise HttpError(f"more than {MAX_REDIRECTS} redirects")

    async def aclose(self) -> None:
        for pool in self._idle.values():
            for connection, _ in pool:
                connection.close()
        self._idle.clear()
        self._idle_count = 0

    def _prepare(
        self, method: str, url: str, headers: dict[str, str], verify: bool, keep_alive: bool
    ) -> tuple[Endpoint, bytes]:
        key = (method, url, verify, keep_alive, *headers.items())
        prepared = self._prepared.get(key)
        if prepared is None:
            if len(self._prepared) >= PREPARED:
                self._prepared.clear()
            prepared = self._prepared[key] = _prepare(method, url, headers, verify, keep_alive)
        return prepared

    async def _exchange(self, endpoint: Endpoint, head: bytes, wanted: int, keep_alive: bool) -> Response:
        """One request and its answer: the body's first ``wanted`` bytes, none when 0. With
        ``keep_alive`` an unwanted body is read (up to ``DRAIN_LIMIT``) so the connection can go back."""
        limit = wanted or (DRAIN_LIMIT if keep_alive else 0)
        connection = self._take(endpoint) if keep_alive else None
        try:
            if connection is not None and not await connection.exchange(head, limit):
                connection = None  # the server closed the idle connection: once more on a new one
            if connection is None:
                connection = await self._connect(endpoint)
                if not await connection.exchange(head, limit):
                    raise HttpError(f"{_where(endpoint)} closed the connection without an answer")
        except BaseException:
            if connection is not None:
                connection.close()
            raise
        response = connection.response(wanted)
        if keep_alive and connection.reusable():
            self._give_back(endpoint, connection)
        else:
            connection.close()
        return response

    async def _connect(self, endpoint: Endpoint) -> Connection:
        loop = asyncio.get_running_loop()
        context = self._context(endpoint.verify) if endpoint.secure else None
        last: OSError | None = None
        for family, address in await self._resolve(endpoint):
            try:
                _, connection = await loop.create_connection(
                    Connection,
                    address,
                    endpoint.port,
                    family=family,
                    ssl=context,
                    server_hostname=endpoint.host if context is not None else None,
                )
                return connection
            except ssl.SSLCertVerificationError as exc:
                raise HttpError(
                    f"TLS to {_where(endpoint)}: certificate verify failed: {exc.verify_message or exc}"
                ) from None
            except ssl.SSLError as exc:
                raise HttpError(f"TLS to {_where(endpoint)}: {exc.reason or exc}") from None
            except OSError as exc:
                last = exc
        raise HttpError(f"cannot connect to {_where(endpoint)}: {_reason(last)}")

    async def _resolve(self, endpoint: Endpoint) -> list[tuple[int, str]]:
        host = endpoint.host
        found = self._literal.get(host)
        if found is not None:
            return found
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            pass
        else:
            family = socket.AF_INET6 if address.version == 6 else socket.AF_INET
            found = self._literal[host] = [(family, str(address))]
            return found
        found = self._addresses.get(host)
        if found is None:
            try:
                infos = await asyncio.get_running_loop().getaddrinfo(
                    host, endpoint.port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
                )
            except socket.gaierror as exc:
                raise HttpError(f"cannot resolve {host}: {exc.strerror}") from None
            found = list(dict.fromkeys((family, str(sockaddr[0])) for family, _, _, _, sockaddr in infos))
            self._addresses.put(host, found)
        return found

    def _context(self, verify: bool) -> ssl.SSLContext:
        context = self._contexts.get(verify)
        if context is None:
            context = ssl.create_default_context()
            if not verify:
                context.check_hostname = False
                context.verify_mode = ssl.CERT_NONE
            self._contexts[verify] = context
        return context

    def _take(self, endpoint: Endpoint) -> Connection | None:
        pool = self._idle.get(endpoint)
        now = time.monotonic()
        while pool:
            connection, since = pool.pop()
            self._idle_count -= 1
            if now - since < IDLE_TTL and connection.reusable():
                return connection
            connection.close()
        return None

    def _give_back(self, endpoint: Endpoint, connection: Connection) -> None:
        if self._idle_count >= MAX_IDLE:
            connection.close()
            return
        self._idle.setdefault(endpoint, deque()).append((connection, time.monotonic()))
        self._idle_count += 1


def _prepare(
    method: str, url: str, headers: dict[str, str], verify: bool, keep_alive: bool
) -> tuple[Endpoint, bytes]:
    """Where to connect and the request's head, for one URL."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise HttpError(f"bad URL {url!r}: {exc}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise HttpError(f"not an http(s) URL: {url!r}")
    secure = parts.scheme == "https"
    default = 443 if secure else 80
    host = parts.hostname
    if not host.isascii():  # an internationalised name, as DNS and the Host header carry it
        try:
            host = host.encode("idna").decode("ascii")
        except UnicodeError as exc:
            raise HttpError(f"bad host name {parts.hostname!r}: {exc}") from None
    named = f"[{host}]" if ":" in host else host
    # By lower-cased name, each with the spelling sent: the plan's headers replace the defaults.
    fields = {"host": ("Host", named if port in (None, default) else f"{named}:{port}"), **_DEFAULT_HEADERS}
    fields.update((name.lower(), (name, value)) for name, value in headers.items())
    if not keep_alive:
        fields["connection"] = ("Connection", "close")  # HTTP/1.1 keeps connections by default
    if method not in _NO_BODY:
        fields["content-length"] = ("Content-Length", "0")
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    lines = [f"{method} {target} HTTP/1.1"]
    for name, value in fields.values():
        if any(c in name or c in value for c in "\r\n\0"):
            raise HttpError(f"header {name!r} holds a line break or NUL")
        lines.append(f"{name}: {value}")
    try:
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    except UnicodeEncodeError as exc:
        raise HttpError(
            f"the request has characters HTTP/1.1 cannot carry: {exc.object[exc.start : exc.end]!r}"
        ) from None
    return Endpoint(secure, host, port or default, verify), head


def _method_after(status: int, method: str) -> str:
    """The method a redirect is followed with: GET after a 303, and after a 301 or 302 to a POST
    (what browsers, curl and aiohttp do); otherwise the same."""
    if (status == 303 and method != "HEAD") or (status in (301, 302) and method == "POST"):
        return "GET"
    return method


def _where(endpoint: Endpoint) -> str:
    return (
        f"[{endpoint.host}]:{endpoint.port}" if ":" in endpoint.host else f"{endpoint.host}:{endpoint.port}"
    )


def _reason(exc: OSError | None) -> str:
    if exc is None:
        return "no address"
    if exc.errno:  # asyncio's "Connect call failed (address)" repeats what the summary says
        return os.strerror(exc.errno)
    return str(exc) or type(exc).__name__
