"""apprise's JSON webhooks (``json://``, ``jsons://``) sent over kept-alive connections.

apprise's JSON plugin posts with ``requests.request()``: a new session and a new TCP (and TLS)
connection for every send, ~1 ms of CPU of a ~1.1 ms send here. This sender sends the same
request over connections kept open per endpoint (~0.1 ms). The same request: apprise's plugin
parses the URL (``+`` headers, ``-`` query parameters, ``:`` payload fields, ``method``, user
and password, ``cto``/``rto``, ``verify``), ``requests`` prepares the request line and headers
once per URL (its default headers, basic auth, netrc, CA bundle), and the body is the one the
plugin builds. Its answers mean what apprise's do: the same log line goes through
``transport.classify``.

What this does not do is left to apprise (``send`` returns False): other schemes, URL options
that change the message (``format``, ``overflow``, ...), a user without a password, a proxy
from the environment, and following a redirect (the redirected send is made again by apprise).
"""

from __future__ import annotations

import http.client
import json
import select
import ssl
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from maintd.notify.transport import TransportError, classify

SCHEMES = ("json://", "jsons://")
IDLE = 4.0  # seconds a connection may wait for its next send: under the 5 s keep-alive of many servers
MAX_IDLE = 16  # idle connections kept per endpoint
PARSED = 1000  # URLs kept parsed (the plan names a few dozen at most)
MAX_ANSWER = 1024 * 1024  # bytes of a receiver's answer read to keep its connection; past it, closed
# Query options whose meaning this sender reproduces; any other one goes through apprise.
_OPTIONS = frozenset({"method", "cto", "rto", "verify", "redirect"})
_REDIRECT = range(300, 400)


@dataclass(frozen=True)
class Target:
    """One URL as apprise's JSON plugin would send to it, prepared once."""

    secure: bool
    host: str  # as apprise names it in its connection-error line
    address: tuple[str, int]
    path: str  # the request target: path and query
    method: str
    headers: dict[str, str]
    payload: dict[str, Any]  # apprise's ``:`` fields: renames (value: the new key), removals ("")
    connect_timeout: float
    read_timeout: float
    redirects: bool
    verify: bool | str = True  # False, True or the CA bundle path requests would use


class WebhookSender:
    """Sends JSON webhooks, reusing idle connections per endpoint; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._targets: dict[str, Target | None] = {}  # None: apprise's (see the module docstring)
        self._pools: dict[tuple[Any, ...], list[tuple[http.client.HTTPConnection, float]]] = {}
        self._contexts: dict[bool | str, ssl.SSLContext] = {}

    def send(
        self,
        url: str,
        title: str,
        body: str,
        *,
        connect_timeout: float,
        read_timeout: float,
        total_timeout: float,
    ) -> bool:
        """Deliver to ``url`` (resolved); False when apprise should send it instead.

        Raises TransportError as ``AppriseNotifier`` does for the same answer.
        """
        if not url.startswith(SCHEMES) or not body:
            return False
        target = self._target(url)
        if target is None:
            return False
        started = time.monotonic()
        cto = min(target.connect_timeout, connect_timeout)
        rto = min(target.read_timeout, read_timeout)
        data = json.dumps(_payload(target, title, body)).encode()
        try:
            status = self._exchange(target, data, cto, rto, started + total_timeout)
        except _Deadline:
            raise _error("TIMEOUT", None, started, rto) from None
        except (OSError, http.client.HTTPException):
            line = f"A Connection error occurred sending JSON notification to {target.host}."
            raise _error("FAILURE", line, started, rto) from None
        if 200 <= status < 300:
            return True
        if status in _REDIRECT and target.redirects:
            return False  # apprise (requests) follows redirects; one sent again is rare enough
        text = _status_text(status)
        line = (
            f"Failed to send JSON {target.method} notification: {text}{', ' if text else ''}error={status}."
        )
        raise _error("FAILURE", line, started, rto)

    def prepare(self, urls: Iterable[str]) -> None:
        """Parse these URLs now, and import what sending them takes (~60 ms of CPU holding the
        GIL, which the first page would otherwise wait for); for a thread of its own."""
        for url in urls:
            if url.startswith(SCHEMES):
                self._target(url)

    def close(self) -> None:
        """Close every idle connection."""
        with self._lock:
            pools, self._pools = list(self._pools.values()), {}
        for pool in pools:
            for conn, _ in pool:
                conn.close()

    def _exchange(self, target: Target, data: bytes, cto: float, rto: float, deadline: float) -> int:
        """Send once; when a kept connection turns out closed by the server, once more on a new one."""
        conn, reused = self._connection(target, cto)
        try:
            return self._request(conn, target, data, rto, deadline, reused=reused)
        except _Stale:
            return self._request(self._new(target, cto), target, data, rto, deadline, reused=False)

    def _request(
        self,
        conn: http.client.HTTPConnection,
        target: Target,
        data: bytes,
        rto: float,
        deadline: float,
        *,
        reused: bool,
    ) -> int:
        try:
            _bound(conn, rto, deadline)
            conn.request(target.method, target.path, body=data, headers=target.headers)
            _bound(conn, rto, deadline)
            response = conn.getresponse()
        except (ConnectionResetError, BrokenPipeError) as exc:  # RemoteDisconnected is one
            conn.close()
            # Closed while idle, before any answer: the server never read this request.
            if reused:
                raise _Stale from exc
            raise
        except BaseException:
            conn.close()
            raise
        drained = 0
        try:
            while drained <= MAX_ANSWER:  # read it all (to keep the connection), no read past the deadline
                _bound(conn, rto, deadline)
                chunk = response.read(65536)
                if not chunk:
                    break
                drained += len(chunk)
        except BaseException:
            conn.close()
            raise
        if response.will_close or drained > MAX_ANSWER:  # a long answer is not read to its end
            conn.close()
        else:
            self._put_back(target, conn)
        return response.status

    # -- connections ---------------------------------------------------------------------------

    def _key(self, target: Target) -> tuple[Any, ...]:
        return (target.secure, target.address, target.verify)

    def _connection(self, target: Target, cto: float) -> tuple[http.client.HTTPConnection, bool]:
        now = time.monotonic()
        with self._lock:
            pool = self._pools.get(self._key(target), [])
            while pool:
                conn, since = pool.pop()
                if now - since <= IDLE and not _dropped(conn):
                    return conn, True
                conn.close()
        return self._new(target, cto), False

    def _new(self, target: Target, cto: float) -> http.client.HTTPConnection:
        host, port = target.address
        if not target.secure:
            return http.client.HTTPConnection(host, port, timeout=cto)
        return http.client.HTTPSConnection(host, port, timeout=cto, context=self._context(target.verify))

    def _put_back(self, target: Target, conn: http.client.HTTPConnection) -> None:
        with self._lock:
            pool = self._pools.setdefault(self._key(target), [])
            if len(pool) < MAX_IDLE:
                pool.append((conn, time.monotonic()))
                return
        conn.close()

    def _context(self, verify: bool | str) -> ssl.SSLContext:
        with self._lock:
            if verify not in self._contexts:
                if verify is False:
                    context = ssl.create_default_context()
                    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
                else:
                    bundle = verify if isinstance(verify, str) else None
                    context = ssl.create_default_context(cafile=bundle)
                self._contexts[verify] = context
            return self._contexts[verify]

    # -- targets -------------------------------------------------------------------------------

    def _target(self, url: str) -> Target | None:
        with self._lock:
            if url in self._targets:
                return self._targets[url]
        target = _prepare(url)
        with self._lock:
            if len(self._targets) < PARSED:
                self._targets[url] = target
        return target


class _Deadline(Exception):
    """The whole send took ``total_timeout``."""


class _Stale(Exception):
    """A kept connection was closed by the server before this request got any answer."""


def _bound(conn: http.client.HTTPConnection, rto: float, deadline: float) -> None:
    """The next socket wait: the read timeout (the connect timeout when connecting), or what is
    left of the whole send if less."""
    left = deadline - time.monotonic()
    if left <= 0:
        raise _Deadline
    if conn.sock is None:
        conn.timeout = min(conn.timeout, left) if conn.timeout is not None else left
    else:
        conn.sock.settimeout(min(rto, left))


def _dropped(conn: http.client.HTTPConnection) -> bool:
    """An idle connection the server closed (or wrote to) is readable: not to be reused."""
    sock = conn.sock
    if sock is None:
        return True
    poller = select.poll()
    poller.register(sock, select.POLLIN | select.POLLERR | select.POLLHUP)
    return bool(poller.poll(0))


def _payload(target: Target, title: str, body: str) -> dict[str, Any]:
    """The body apprise's JSON plugin posts (apprise strips the title, right-strips the body)."""
    payload: dict[str, Any] = {
        "version": "1.0",
        "title": title.strip(),
        "message": body.rstrip(),
        "attachments": [],
        "type": "failure",
    }
    for key, value in target.payload.items():
        if key in payload:
            moved = payload.pop(key)
            if value:
                payload[value] = moved
        else:
            payload[key] = value
    return payload


def _error(status: str, line: str | None, started: float, rto: float) -> TransportError:
    """What apprise's result with this log line means (``transport.classify``)."""
    error = classify(status, [line] if line else [], time.monotonic() - started, rto)
    return error if error is not None else TransportError(f"apprise reported {status}")


def _status_text(status: int) -> str:
    from apprise.url import URLBase

    return str(URLBase.http_response_code_lookup(status))  # type: ignore[no-untyped-call]


def _prepare(url: str) -> Target | None:
    """The request apprise would make for ``url``, or None when apprise should send it."""
    import requests
    from apprise.plugins.custom_json import NotifyJSON

    try:
        parsed = NotifyJSON.parse_url(url)  # type: ignore[no-untyped-call]
        if not parsed or any(key[:1] not in "+-:" and key not in _OPTIONS for key in parsed.get("qsd", {})):
            return None
        service = NotifyJSON(**parsed)  # type: ignore[no-untyped-call]
    except Exception:  # apprise says why, when it is asked to send it
        return None
    user, password = service.user, service.password
    if user and not password:
        return None  # requests would send "user:None"
    secure, method = bool(service.secure), str(service.method)
    base = f"{'https' if secure else 'http'}://{service.host}"
    base += f":{service.port}" if isinstance(service.port, int) else ""
    session = requests.Session()
    try:
        prepared = session.prepare_request(
            requests.Request(
                method,
                base + service.fullpath,
                params=service.params,
                headers={"User-Agent": service.app_id, "Content-Type": "application/json", **service.headers},
                auth=(str(user), str(password)) if user else None,
            )
        )
        full = str(prepared.url)
        settings = session.merge_environment_settings(full, {}, None, service.verify_certificate, None)
    except Exception:
        return None
    finally:
        session.close()
    parts = urlsplit(full)
    if settings.get("proxies") or parts.hostname is None:
        return None
    return Target(
        secure=secure,
        host=str(service.host),
        address=(parts.hostname, parts.port or (443 if secure else 80)),
        path=prepared.path_url,
        method=method,
        headers={k: str(v) for k, v in prepared.headers.items() if k.lower() != "content-length"},
        payload=dict(service.payload_extras),
        connect_timeout=float(service.socket_connect_timeout),
        read_timeout=float(service.socket_read_timeout),
        redirects=bool(service.redirects),
        verify=settings.get("verify", True),
    )
