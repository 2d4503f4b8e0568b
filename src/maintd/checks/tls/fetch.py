"""Get the certificate chain a live endpoint presents: plain TLS, SMTP STARTTLS or PostgreSQL SSLRequest.

The handshake does not verify anything (the check judges the chain itself, at
the clock's time) and accepts weak keys and old signatures, so that they can
be reported instead of failing the handshake.
"""

from __future__ import annotations

import _ssl
import asyncio
import socket
import ssl
import struct
import time
from dataclasses import dataclass
from typing import Any

from maintd.checks.tcp.net import close_quietly, describe_error

_SSL_REQUEST = struct.pack("!ii", 8, 80877103)  # PostgreSQL: length 8, SSLRequest code 1234.5679
_SMTP_MAX_LINES = 100
_DER = getattr(_ssl, "ENCODING_DER", 2)  # for the private chain API of Python 3.10-3.12


class FetchError(Exception):
    """The endpoint did not present a chain; the message says at which step and why."""


@dataclass
class Presented:
    chain: list[bytes]  # DER, as presented, leaf first
    complete: bool  # False when this Python could only read the leaf
    protocol: str
    cipher: str
    connect_time: float
    handshake_time: float


async def fetch_chain(host: str, port: int, server_name: str, starttls: str, timeout: float) -> Presented:
    started = time.perf_counter()
    step = "connect"
    writer: asyncio.StreamWriter | None = None
    try:
        async with asyncio.timeout(timeout):
            reader, writer = await asyncio.open_connection(host, port)
            connected = time.perf_counter()
            if starttls == "smtp":
                step = "SMTP dialogue"
                await _smtp_starttls(reader, writer)
            elif starttls == "postgres":
                step = "PostgreSQL SSLRequest"
                await _postgres_ssl_request(reader, writer)
            step = "TLS handshake"
            await writer.start_tls(_inspecting_context(), server_hostname=server_name)
            handshaken = time.perf_counter()
        ssl_object = writer.get_extra_info("ssl_object")
        chain, complete = presented_chain(ssl_object)  # before closing: the SSL object goes with it
        cipher = ssl_object.cipher()
        protocol = ssl_object.version() or "?"
    except TimeoutError:
        raise FetchError(f"timed out after {timeout:g}s during the {step}") from None
    except asyncio.IncompleteReadError:
        raise FetchError(f"{step} failed: the server closed the connection") from None
    except (OSError, ValueError) as exc:
        raise FetchError(f"{step} failed: {describe_error(exc)}") from None
    finally:
        if writer is not None:
            await close_quietly(writer)
    if not chain:
        raise FetchError("the server presented no certificate")
    return Presented(
        chain, complete, protocol, cipher[0] if cipher else "?", connected - started, handshaken - connected
    )


def presented_chain(ssl_object: Any) -> tuple[list[bytes], bool]:
    """The chain as the server sent it (leaf first), and whether it is the whole chain.

    ``getpeercert(binary_form=True)`` gives only the leaf. Python 3.13 has a public
    ``get_unverified_chain()``; 3.10-3.12 have it on the private ``_sslobj`` only.
    """
    public = getattr(ssl_object, "get_unverified_chain", None)
    if public is not None:
        return [bytes(der) for der in public() or []], True
    private = getattr(getattr(ssl_object, "_sslobj", None), "get_unverified_chain", None)
    if private is not None:
        return [cert.public_bytes(_DER) for cert in private() or []], True
    leaf = ssl_object.getpeercert(binary_form=True)
    return ([leaf] if leaf else []), False


def _inspecting_context() -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    # Security level 0: a 1024-bit key or a SHA-1 chain must be reported, not refused by OpenSSL.
    context.set_ciphers("DEFAULT:@SECLEVEL=0")
    return context


async def _smtp_starttls(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """RFC 3207: greeting 220, EHLO 250 listing STARTTLS, STARTTLS 220; then TLS."""
    await _smtp_expect(reader, 220, "greeting")
    writer.write(f"EHLO {socket.gethostname() or 'maintd'}\r\n".encode())
    await writer.drain()
    lines = await _smtp_expect(reader, 250, "EHLO")
    if not any(line[4:].strip().upper().startswith("STARTTLS") for line in lines):
        raise FetchError("the SMTP server does not offer STARTTLS")
    writer.write(b"STARTTLS\r\n")
    await writer.drain()
    await _smtp_expect(reader, 220, "STARTTLS")


async def _smtp_expect(reader: asyncio.StreamReader, code: int, what: str) -> list[str]:
    lines: list[str] = []
    while len(lines) < _SMTP_MAX_LINES:
        raw = await reader.readline()  # at most the reader's limit (64 KiB), else ValueError
        if not raw:
            raise FetchError(f"the SMTP server closed the connection (waiting for its {what} reply)")
        line = raw.decode("utf-8", "replace").rstrip("\r\n")
        lines.append(line)
        if line[3:4] != "-":
            break
    else:
        raise FetchError(f"SMTP {what} reply longer than {_SMTP_MAX_LINES} lines")
    if not lines[-1][:3].isdigit():
        raise FetchError(f"not an SMTP server: {lines[-1][:120]!r}")
    if int(lines[-1][:3]) != code:
        raise FetchError(f"SMTP {what} answered {lines[-1][:120]!r}, expected {code}")
    return lines


async def _postgres_ssl_request(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """The protocol's SSLRequest: 8 bytes; the server answers one byte, S to go on with TLS, N for no."""
    writer.write(_SSL_REQUEST)
    await writer.drain()
    answer = await reader.readexactly(1)
    if answer == b"N":
        raise FetchError("the PostgreSQL server does not accept SSL (it answered N to the SSLRequest)")
    if answer != b"S":
        raise FetchError(f"not a PostgreSQL server: it answered {answer!r} to the SSLRequest")
