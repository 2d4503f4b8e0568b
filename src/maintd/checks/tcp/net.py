"""Where to connect and how to say why it failed: shared by the ``tcp`` and ``tls`` kinds."""

from __future__ import annotations

import asyncio
import os
import re
import socket
import ssl
from typing import Any
from urllib.parse import urlsplit

_SSL_SOURCE = re.compile(r" \(_ssl\.c:\d+\)$")
_CLOSE_GRACE = 1.0  # seconds a polite close (TLS close_notify) may take before the socket is aborted
_URL_PORTS = {"http": 80, "https": 443, "smtp": 25, "smtps": 465, "postgres": 5432, "postgresql": 5432}


def endpoint(
    host: str | None, port: int | None, connection: dict[str, Any], default_port: int | None = None
) -> tuple[str, int] | str:
    """``(host, port)`` from the params, else the target's connection host/port (or its url);
    a message saying what is missing when neither has it."""
    url = urlsplit(str(connection["url"])) if connection.get("url") else None
    host = host or connection.get("host") or (url.hostname if url else None)
    if port is None:
        raw = connection.get("port")
        if raw is None and url is not None:
            try:
                raw = url.port or _URL_PORTS.get(url.scheme)
            except ValueError:
                raw = None
        port = raw if raw is not None else default_port
    if not host:
        return "no host: set params.host or the target's connection.host"
    if port is None:
        return "no port: set params.port or the target's connection.port"
    try:
        number = int(port)
    except (TypeError, ValueError):
        return f"port {port!r} is not a number"
    if not 0 < number < 65536:
        return f"port {number} is out of range"
    return str(host), number


def hostport(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def describe_error(exc: BaseException) -> str:
    """One line for a failed connect, read or handshake, without the noise asyncio adds."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"certificate verification failed: {exc.verify_message}"
    if isinstance(exc, ssl.SSLError):
        return f"TLS error: {_SSL_SOURCE.sub('', str(exc))}"
    if isinstance(exc, socket.gaierror):
        return f"cannot resolve: {exc.strerror or exc}"
    if isinstance(exc, TimeoutError):
        return "timed out"
    if isinstance(exc, OSError) and exc.errno:
        # asyncio's "Connect call failed ('127.0.0.1', 9)" hides the reason behind errno.
        return os.strerror(exc.errno)
    return str(exc) or type(exc).__name__


async def close_quietly(writer: asyncio.StreamWriter) -> None:
    """Close politely (TLS close_notify) but never wait long for a peer that does not answer."""
    if writer.transport.is_closing():
        # Closed under us, e.g. by a failed start_tls, which closes the socket after handing it to
        # its TLS protocol: the stream's own protocol never hears of it, so waiting would only time out.
        writer.transport.abort()
        return
    writer.close()
    try:
        async with asyncio.timeout(_CLOSE_GRACE):
            await writer.wait_closed()
    except TimeoutError:
        writer.transport.abort()
    except OSError:
        pass  # a reset while closing changes nothing about the result
    except asyncio.CancelledError:
        writer.transport.abort()
        raise
