"""The tcp kind against real TCP and TLS servers on loopback."""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from maintd.checks.base import CheckResult, Status
from maintd.checks.tcp import unescape
from tests.conftest import run
from tests.kinds import REGISTRY, make_target, run_kind
from tests.servers import make_certificate
from tests.tls_support.servers import Handler, serve


@asynccontextmanager
async def tcp_server(handler: Handler, tls: tuple[Path, Path] | None = None) -> AsyncIterator[int]:
    """Serve ``handler`` on 127.0.0.1 (a free port, optionally TLS); yields the port."""
    context = None
    if tls is not None:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(*tls)
    async with serve(handler, context) as port:
        yield port


async def banner(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.write(b"SSH-2.0-maintd-test\r\n")
    await writer.drain()
    await reader.read()  # until the client closes
    writer.close()


async def pong(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    if await reader.readline() == b"PING\r\n":
        writer.write(b"+PONG\r\n")
        await writer.drain()
    await reader.read()
    writer.close()


async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await reader.read()
    writer.close()


async def hangs_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.write(b"go away\r\n")
    writer.close()


async def chatty(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.write(b"x" * 200_000)
    await writer.drain()
    await reader.read()
    writer.close()


def check(handler: Handler, served_tls: tuple[Path, Path] | None = None, **params: Any) -> CheckResult:
    async def go() -> CheckResult:
        async with tcp_server(handler, served_tls) as port:
            return await run_kind("tcp", {"host": "127.0.0.1", "port": port, **params})

    return run(go())  # type: ignore[no-any-return]


@pytest.fixture
def closed_port() -> Iterator[int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))  # bound but not listening: connections are refused
        yield sock.getsockname()[1]


@pytest.fixture
def blackhole_port() -> Iterator[int]:
    """A port whose SYNs go unanswered: a listener with a full backlog drops new connections."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        port = listener.getsockname()[1]
        with socket.create_connection(("127.0.0.1", port), timeout=5):  # fills the queue of one
            yield port


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return make_certificate(tmp_path_factory.mktemp("tls"))


def test_a_listening_port_is_ok_with_connect_and_total_time_as_metrics():
    result = check(silent)
    assert result.status is Status.ok
    assert result.output.startswith("127.0.0.1:")
    assert "connected in" in result.output
    assert 0 <= result.metrics["connect_time"] <= result.metrics["time"] < 5


def test_a_refused_connection_is_critical_with_the_reason(closed_port):
    result = run(run_kind("tcp", {"host": "127.0.0.1", "port": closed_port}))
    assert result.status is Status.critical
    assert result.output == f"127.0.0.1:{closed_port}: connect failed: Connection refused"


def test_a_connect_that_is_never_answered_is_critical_at_the_connect_timeout(blackhole_port):
    result = run(run_kind("tcp", {"host": "127.0.0.1", "port": blackhole_port, "connect_timeout": "300ms"}))
    assert result.status is Status.critical
    assert result.output.endswith("connect failed: timed out after 0.3s")


def test_the_run_deadline_bounds_the_connect_timeout(blackhole_port):
    result = run(run_kind("tcp", {"host": "127.0.0.1", "port": blackhole_port}, timeout=0.3))
    assert result.status is Status.critical
    assert "timed out after 0.3s" in result.output


def test_the_expected_banner_is_found_in_the_first_bytes():
    result = check(banner, expect="SSH-2.0-")
    assert result.status is Status.ok
    assert "got 'SSH-2.0-' in 21 bytes" in result.output
    assert result.metrics["bytes_read"] == 21


def test_what_is_sent_understands_escapes_and_the_answer_is_matched():
    result = check(pong, send=r"PING\r\n", expect="+PONG")
    assert result.status is Status.ok
    assert "sent 6 bytes" in result.output


@pytest.mark.parametrize(
    ("handler", "params", "problem"),
    [
        (banner, {"expect": "220 "}, "no '220 ' within 0.3s; read 21 bytes: 'SSH-2.0-maintd-test\\r\\n'"),
        (silent, {"expect": "hello"}, "no 'hello' within 0.3s; read 0 bytes: ''"),
        (hangs_up, {"expect": "hi"}, "connection closed without 'hi'; read 9 bytes: 'go away\\r\\n'"),
        (chatty, {"expect": "END", "read_limit": 900}, "read limit 900 reached without 'END'; read 900"),
    ],
    ids=["wrong-banner", "no-answer", "hang-up", "read-limit"],
)
def test_an_answer_without_the_expected_text_is_critical_with_what_was_read(handler, params, problem):
    result = check(handler, read_timeout="300ms", **params)
    assert result.status is Status.critical
    assert problem in result.output.splitlines()[0]
    assert "bytes_read" in result.metrics


@pytest.mark.parametrize(
    ("params", "status"),
    [
        ({"warn_latency": "10s", "crit_latency": "20s"}, Status.ok),
        ({"warn_latency": 0, "crit_latency": "20s"}, Status.warning),
        ({"warn_latency": 0, "crit_latency": 0}, Status.critical),
    ],
)
def test_total_time_is_compared_with_the_latency_thresholds(params, status):
    result = check(banner, expect="SSH", **params)
    assert result.status is status
    assert "warning at" in result.output


def test_tls_is_verified_against_the_given_ca_file(certificate):
    cert, _key = certificate
    result = check(banner, certificate, tls=True, ca_file=str(cert), server_name="localhost", expect="SSH-")
    assert result.status is Status.ok, result.output
    assert "TLS in" in result.output
    assert result.metrics["tls_time"] >= 0


def test_an_untrusted_certificate_is_critical_unless_verification_is_off(certificate):
    untrusted = check(banner, certificate, tls=True)
    assert untrusted.status is Status.critical
    assert "handshake failed: certificate verification failed: self-signed certificate" in untrusted.output
    assert check(banner, certificate, tls=True, verify_tls=False, expect="SSH-").status is Status.ok


def test_a_name_the_certificate_does_not_cover_fails_verification(certificate):
    cert, _key = certificate
    result = check(banner, certificate, tls=True, ca_file=str(cert), server_name="db.example.test")
    assert result.status is Status.critical
    assert "Hostname mismatch" in result.output


def test_tls_to_a_plain_text_server_is_critical_with_the_handshake_error():
    result = check(banner, tls=True, verify_tls=False)
    assert result.status is Status.critical
    assert "handshake failed: TLS error: [SSL: WRONG_VERSION_NUMBER] wrong version number" in result.output


def test_host_and_port_default_to_the_targets_connection():
    async def go() -> tuple[CheckResult, CheckResult]:
        async with tcp_server(silent) as port:
            by_host = await run_kind("tcp", {}, make_target(connection={"host": "127.0.0.1", "port": port}))
            by_url = await run_kind("tcp", {}, make_target(connection={"url": f"http://127.0.0.1:{port}/x"}))
            return by_host, by_url

    by_host, by_url = run(go())
    assert by_host.status is Status.ok
    assert by_url.status is Status.ok


@pytest.mark.parametrize(
    ("params", "connection", "message"),
    [
        ({}, {}, "no host: set params.host or the target's connection.host (target t1)"),
        ({"host": "127.0.0.1"}, {}, "no port: set params.port or the target's connection.port (target t1)"),
        ({}, {"host": "127.0.0.1", "port": "http"}, "port 'http' is not a number (target t1)"),
    ],
)
def test_a_missing_endpoint_is_unknown(params, connection, message):
    result = run(run_kind("tcp", params, make_target(connection=connection)))
    assert result.status is Status.unknown
    assert result.output == message


@pytest.mark.parametrize(
    ("text", "data"),
    [
        (r"QUIT\r\n", b"QUIT\r\n"),
        (r"a\tb\0c", b"a\tb\0c"),
        (r"\x00\xff", b"\x00\xff"),
        (r"back\\slash\q", b"back\\slash\\q"),
        ("caf\u00e9", "caf\u00e9".encode()),
    ],
)
def test_send_and_expect_understand_backslash_escapes(text, data):
    assert unescape(text) == data


@pytest.mark.parametrize(
    "bad", [{"port": 0}, {"port": 70000}, {"connect_timeout": 0}, {"read_limit": 0}, {"expect_text": "x"}]
)
def test_bad_params_are_rejected_by_the_kinds_model(bad):
    with pytest.raises(ValidationError):
        REGISTRY.get("tcp").config.model_validate(bad)
