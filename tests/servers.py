"""Real servers on loopback for the tests: HTTP and HTTPS with a throwaway certificate."""

from __future__ import annotations

import asyncio
import ssl
import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from aiohttp import web


def make_certificate(directory: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and localhost (openssl, argument list)."""
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-days",
            "2",
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=DNS:localhost,IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
        timeout=30,
    )
    return cert, key


@asynccontextmanager
async def http_server(app: web.Application, tls: tuple[Path, Path] | None = None) -> AsyncIterator[str]:
    """Serve ``app`` on 127.0.0.1 (a free port); yields the base URL."""
    context = None
    if tls is not None:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(*tls)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=context)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"{'https' if tls else 'http'}://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


def sample_app(release: asyncio.Event | None = None) -> web.Application:
    async def ok(_request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def missing(_request: web.Request) -> web.Response:
        return web.Response(status=404, text="not here")

    async def slow(_request: web.Request) -> web.Response:
        if release is not None:
            await release.wait()
        return web.Response(text="finally")

    async def moved(_request: web.Request) -> web.Response:
        raise web.HTTPFound("/ok")

    async def echo_headers(request: web.Request) -> web.Response:
        return web.json_response(dict(request.headers))

    app = web.Application()
    app.router.add_get("/ok", ok)
    app.router.add_get("/missing", missing)
    app.router.add_get("/slow", slow)
    app.router.add_get("/moved", moved)
    app.router.add_get("/headers", echo_headers)
    return app
