"""TLS, SMTP STARTTLS and pretend-PostgreSQL servers on loopback, each in the test's own event loop."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

from aiosmtpd.handlers import Sink
from aiosmtpd.smtp import SMTP

from tests.tls_support.certs import Issued, write_pem


def server_context(directory: Path, chain: list[Issued]) -> ssl.SSLContext:
    """A server context presenting ``chain`` (leaf first), weak keys and signatures allowed."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.set_ciphers("DEFAULT:@SECLEVEL=0")
    name = chain[0].cert.serial_number
    cert = write_pem(directory / f"served-{name}.pem", *chain)
    key = directory / f"served-{name}.key"
    key.write_bytes(chain[0].key_pem())
    context.load_cert_chain(cert, key)
    return context


async def _hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(OSError):
        await reader.read()  # until the client goes
    writer.close()


@asynccontextmanager
async def tls_server(
    directory: Path, chain: list[Issued], by_name: dict[str, list[Issued]] | None = None
) -> AsyncIterator[int]:
    """Present ``chain`` on 127.0.0.1 (a free port), or ``by_name[sni]`` for a client asking for that name."""
    context = server_context(directory, chain)
    if by_name:
        others = {name: server_context(directory, other) for name, other in by_name.items()}

        def pick(sock: ssl.SSLObject, name: str | None, _ctx: ssl.SSLContext) -> None:
            if name in others:
                sock.context = others[name]

        context.sni_callback = pick
    async with serve(_hold, context) as port:
        yield port


Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@asynccontextmanager
async def serve(handler: Handler, context: ssl.SSLContext | None = None) -> AsyncIterator[int]:
    """Serve ``handler`` on 127.0.0.1 (a free port); yields the port. Connections still open at the
    end are cut (Python 3.11's ``Server.close`` leaves them to the garbage collector)."""
    writers: list[asyncio.StreamWriter] = []

    async def tracked(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writers.append(writer)
        try:
            await handler(reader, writer)
        except (OSError, asyncio.IncompleteReadError):
            pass  # the client went away first
        finally:
            writer.close()

    server = await asyncio.start_server(tracked, "127.0.0.1", 0, ssl=context)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        for writer in writers:
            writer.transport.abort()
        await asyncio.sleep(0)  # one loop turn: the aborted sockets are closed in callbacks
        await server.wait_closed()


@asynccontextmanager
async def smtp_server(directory: Path, chain: list[Issued] | None) -> AsyncIterator[int]:
    """aiosmtpd on 127.0.0.1; it offers STARTTLS with ``chain`` (none: no STARTTLS at all)."""
    context = server_context(directory, chain) if chain else None
    sessions: list[SMTP] = []

    def session() -> SMTP:
        sessions.append(SMTP(Sink(), hostname="mx.example.test", tls_context=context))
        return sessions[-1]

    server = await asyncio.get_running_loop().create_server(session, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        for smtp in sessions:
            if isinstance(smtp.transport, asyncio.Transport):
                smtp.transport.abort()
        await asyncio.sleep(0)
        await server.wait_closed()


async def refuses_ssl(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """What a PostgreSQL server with ssl=off answers to an SSLRequest."""
    if await reader.readexactly(8) == b"\x00\x00\x00\x08\x04\xd2\x16\x2f":
        writer.write(b"N")
        await writer.drain()
    await _hold(reader, writer)
