"""The http check's own client (maintd.checks.http.client) against real servers on loopback:
scripted raw answers for what a framework would never send, aiohttp for the rest."""

from __future__ import annotations

import asyncio
import gzip
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import pytest
from aiohttp import web

from maintd.checks.base import Status
from maintd.checks.http.client import HEAD_LIMIT, MAX_REDIRECTS, HttpClient, HttpError
from tests.conftest import run
from tests.kinds import make_target, run_kind
from tests.servers import http_server

Answer = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@asynccontextmanager
async def raw_server(answer: Answer) -> AsyncIterator[str]:
    """A TCP server on loopback that runs ``answer`` for each connection; yields its base URL."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await answer(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.close()


def answering(*chunks: bytes) -> Answer:
    """Read the request's head, write ``chunks``, close."""

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        for chunk in chunks:
            writer.write(chunk)
            await writer.drain()

    return answer


def check_raw(answer: Answer, **params):  # type: ignore[no-untyped-def]
    async def go():  # type: ignore[no-untyped-def]
        async with raw_server(answer) as base:
            return await run_kind("http", {"url": base + "/", **params}, timeout=5)

    return run(go())


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        (answering(b"SSH-2.0-OpenSSH_9.2\r\n"), "not an HTTP response"),
        (answering(), "closed the connection without an answer"),
        (
            answering(b"HTTP/1.1 200 OK\r\nX-Pad: " + b"a" * (HEAD_LIMIT + 10)),
            f"longer than {HEAD_LIMIT} bytes",
        ),
        (
            answering(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc"),
            "closed the connection mid-response",
        ),
    ],
)
def test_a_server_that_answers_badly_fails_the_check_with_the_reason(answer, reason):  # type: ignore[no-untyped-def]
    result = check_raw(answer, body_contains="x")
    assert result.status is Status.critical
    assert reason in result.output, result.output


def test_a_body_without_length_ends_with_the_connection():
    result = check_raw(answering(b"HTTP/1.0 200 OK\r\n\r\nall ", b"of it"), body_contains="all of it")
    assert result.status is Status.ok, result.output


def test_an_interim_answer_is_skipped_for_the_real_one():
    answer = answering(b"HTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n")
    result = check_raw(answer, expect_status=[204])
    assert result.status is Status.ok, result.output


def encoded_app() -> web.Application:
    text = b"the marker is near the end of a long text " * 100 + b"MARKER"

    def encoded(body: bytes, coding: str):  # type: ignore[no-untyped-def]
        async def handler(_request: web.Request) -> web.Response:
            return web.Response(body=body, headers={"Content-Encoding": coding, "Content-Type": "text/plain"})

        return handler

    bomb = gzip.compress(b"\0" * (64 << 20))  # 64 MiB of zeros in ~64 KiB
    app = web.Application()
    app.router.add_get("/gzip", encoded(gzip.compress(text), "gzip"))
    app.router.add_get("/deflate", encoded(zlib.compress(text), "deflate"))
    app.router.add_get("/bomb", encoded(bomb, "gzip"))
    app.router.add_get("/corrupt", encoded(b"\x1f\x8b\x08\x00garbage", "gzip"))
    app.router.add_get("/brotli", encoded(b"\x0b\x02\x80hello\x03", "br"))
    return app


def check_app(app: web.Application, path: str, **params):  # type: ignore[no-untyped-def]
    async def go():  # type: ignore[no-untyped-def]
        async with http_server(app) as base:
            return await run_kind("http", {"url": base + path, **params}, timeout=10)

    return run(go())


@pytest.mark.parametrize("path", ["/gzip", "/deflate"])
def test_a_compressed_body_is_decoded_before_it_is_searched(path):  # type: ignore[no-untyped-def]
    assert check_app(encoded_app(), path, body_contains="MARKER").status is Status.ok


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("/bomb", "body lacks 'MARKER' (in its first 1048576 bytes)"),
        ("/corrupt", "the compressed body is corrupt: it ends before its stream does"),
        ("/brotli", "cannot decode the body's Content-Encoding 'br'"),
    ],
)
def test_a_body_that_cannot_be_decoded_or_decodes_too_far_is_critical(path, reason):  # type: ignore[no-untyped-def]
    result = check_app(encoded_app(), path, body_contains="MARKER")
    assert result.status is Status.critical
    assert result.output.endswith(reason), result.output


def test_an_undecodable_body_nobody_reads_does_not_matter():
    assert check_app(encoded_app(), "/brotli").status is Status.ok


def redirect_app(seen: list[tuple[str, str]]) -> web.Application:
    async def loop(request: web.Request) -> web.Response:
        seen.append((request.method, request.path))
        raise web.HTTPFound(f"/loop/{int(request.match_info['n']) + 1}")

    async def see_other(request: web.Request) -> web.Response:
        seen.append((request.method, request.path))
        raise web.HTTPSeeOther("/landing?from=post")

    async def landing(request: web.Request) -> web.Response:
        seen.append((request.method, request.path_qs))
        return web.Response(text="landed")

    app = web.Application()
    app.router.add_get("/loop/{n}", loop)
    app.router.add_post("/form", see_other)
    app.router.add_get("/landing", landing)
    return app


def test_a_redirect_loop_stops_after_the_limit():
    seen: list[tuple[str, str]] = []
    result = check_app(redirect_app(seen), "/loop/0")
    assert result.status is Status.critical
    assert result.output.endswith(f"more than {MAX_REDIRECTS} redirects")
    assert len(seen) == MAX_REDIRECTS + 1


def test_a_post_answered_with_see_other_is_followed_with_a_get():
    seen: list[tuple[str, str]] = []
    result = check_app(redirect_app(seen), "/form", method="POST", body_contains="landed")
    assert result.status is Status.ok, result.output
    assert seen == [("POST", "/form"), ("GET", "/landing?from=post")]


def test_a_header_with_a_line_break_is_refused_before_anything_is_sent():
    requests: list[bytes] = []

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        requests.append(await reader.read(1024))

    result = check_raw(answer, headers={"X-A": "1\r\nX-Injected: yes"})
    assert result.status is Status.critical
    assert "line break" in result.output
    assert requests == []


def test_a_name_that_does_not_resolve_is_critical():
    result = run(run_kind("http", {"url": "http://no-such-host.invalid/"}, timeout=10))
    assert result.status is Status.critical
    assert "cannot resolve no-such-host.invalid" in result.output


def test_a_name_is_resolved_once_and_remembered():
    async def go() -> list[int]:
        client = HttpClient()
        statuses = []
        async with raw_server(answering(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")) as base:
            url = base.replace("127.0.0.1", "localhost") + "/"
            for _ in range(2):
                statuses.append((await client.request("GET", url, {})).status)
        assert list(client._addresses._found) == ["localhost"]
        await client.aclose()
        return statuses

    assert run(go()) == [200, 200]


def test_a_pooled_connection_the_server_closed_is_replaced_once():
    """The server answers one request per connection, keeps it open, and closes it without an
    answer when a second request comes: each later check sends again on a new connection."""
    connections: list[int] = []

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(1)
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        await writer.drain()
        await reader.readuntil(b"\r\n\r\n")  # the next request: closed unanswered

    async def go() -> list[int]:
        client = HttpClient()
        async with raw_server(answer) as base:
            statuses = [
                (await client.request("GET", base + "/", {}, keep_alive=True)).status for _ in range(3)
            ]
        await client.aclose()
        return statuses

    assert run(go()) == [200, 200, 200]
    assert len(connections) == 3


def test_an_internationalised_name_is_looked_up_in_its_ascii_form():
    result = run(run_kind("http", {}, make_target(connection={"url": "http://bücher.invalid/"}), timeout=10))
    assert result.status is Status.critical
    assert "cannot resolve xn--bcher-kva.invalid" in result.output


def test_the_client_raises_http_errors_only():
    async def go() -> None:
        with pytest.raises(HttpError, match="not an http"):
            await HttpClient().request("GET", "ftp://example.test/", {})
        with pytest.raises(HttpError, match="bad URL"):
            await HttpClient().request("GET", "http://127.0.0.1:99999/", {})

    run(go())
