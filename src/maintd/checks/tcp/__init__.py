"""``tcp``: connect to host:port, optionally over TLS, send bytes and expect an answer.

Like ``check_tcp``: the connect time, the optional exchange and the total time
decide the result. Every failure of the peer (refused, unreachable, timed out,
a TLS handshake that fails, an answer without the expected text) is critical
with the reason.
"""

from __future__ import annotations

import asyncio
import re
import ssl
import time
from datetime import timedelta

from pydantic import Field, field_validator

from maintd.checks.base import CheckResult, Kind, RunContext, Status
from maintd.checks.tcp.net import close_quietly, describe_error, endpoint, hostport
from maintd.plan.base import StrictModel
from maintd.plan.types import Duration

_ESCAPE = re.compile(r"\\(x[0-9A-Fa-f]{2}|[rnt0\\])")
_SIMPLE = {"r": b"\r", "n": b"\n", "t": b"\t", "0": b"\0", "\\": b"\\"}


class TcpConfig(StrictModel):
    host: str | None = Field(default=None, description="host name or address; default: connection.host")
    port: int | None = Field(
        default=None, ge=1, le=65535, description="default: the target's connection.port"
    )
    connect_timeout: Duration = Field(
        default=timedelta(seconds=10), description="time allowed for the TCP connect (and TLS handshake)"
    )
    send: str | None = Field(
        default=None, description=r"sent after connecting; \r \n \t \0 \\ and \xHH are understood"
    )
    expect: str | None = Field(
        default=None, description="text the first bytes read must contain (same escapes as send)"
    )
    read_timeout: Duration = Field(default=timedelta(seconds=10), description="time allowed for the answer")
    read_limit: int = Field(
        default=65_536, ge=1, le=1 << 20, description="bytes read at most while looking for expect"
    )
    tls: bool = Field(default=False, description="wrap the connection in TLS after connecting")
    verify_tls: bool = Field(default=True, description="verify the server's certificate and name")
    server_name: str | None = Field(default=None, description="TLS SNI and expected name; default: host")
    ca_file: str | None = Field(default=None, description="CA bundle to verify against; default: system")
    warn_latency: Duration | None = Field(default=None, description="warning at or above this total time")
    crit_latency: Duration | None = Field(default=None, description="critical at or above this total time")

    @field_validator("connect_timeout", "read_timeout")
    @classmethod
    def _positive(cls, value: timedelta) -> timedelta:
        if value.total_seconds() <= 0:
            raise ValueError("a timeout must be longer than 0s")
        return value


def unescape(text: str) -> bytes:
    r"""``'QUIT\r\n'`` → ``b'QUIT\r\n'``; other text is UTF-8."""
    out, pos = bytearray(), 0
    for match in _ESCAPE.finditer(text):
        out += text[pos : match.start()].encode()
        code = match.group(1)
        out += bytes([int(code[1:], 16)]) if code[0] == "x" else _SIMPLE[code]
        pos = match.end()
    out += text[pos:].encode()
    return bytes(out)


class TcpCheck:
    def __init__(self, config: TcpConfig) -> None:
        self.config = config

    async def run(self, ctx: RunContext) -> CheckResult:
        cfg = self.config
        where = endpoint(cfg.host, cfg.port, ctx.target.connection)
        if isinstance(where, str):
            return CheckResult(Status.unknown, f"{where} (target {ctx.target.name})")
        host, port = where
        label = hostport(host, port)
        tls_context = None
        if cfg.tls:
            try:
                tls_context = client_context(cfg.verify_tls, cfg.ca_file)
            except (OSError, ssl.SSLError) as exc:
                return CheckResult(Status.unknown, f"{label}: cannot load ca_file {cfg.ca_file}: {exc}")
        connect_timeout = min(cfg.connect_timeout.total_seconds(), ctx.seconds_left())
        started = time.perf_counter()
        writer: asyncio.StreamWriter | None = None
        try:
            try:
                async with asyncio.timeout(connect_timeout):
                    reader, writer = await asyncio.open_connection(host, port, limit=cfg.read_limit)
            except (OSError, TimeoutError) as exc:
                why = describe_error(exc)
                if isinstance(exc, TimeoutError):
                    why = f"timed out after {connect_timeout:g}s"
                return CheckResult(Status.critical, f"{label}: connect failed: {why}")
            metrics = {"connect_time": round(time.perf_counter() - started, 6)}
            notes = [f"connected in {_ms(metrics['connect_time'])}"]
            if tls_context is not None:
                handshake_started = time.perf_counter()
                try:
                    async with asyncio.timeout(max(connect_timeout - metrics["connect_time"], 0.0)):
                        await writer.start_tls(tls_context, server_hostname=cfg.server_name or host)
                except (OSError, TimeoutError) as exc:
                    return CheckResult(
                        Status.critical, f"{label}: TLS handshake failed: {describe_error(exc)}", metrics
                    )
                metrics["tls_time"] = round(time.perf_counter() - handshake_started, 6)
                notes.append(f"TLS in {_ms(metrics['tls_time'])}")
            read_timeout = min(cfg.read_timeout.total_seconds(), ctx.seconds_left())
            problem = await self._exchange(reader, writer, read_timeout, metrics, notes)
            metrics["time"] = round(time.perf_counter() - started, 6)
        finally:
            if writer is not None:
                await close_quietly(writer)
        notes.append(f"total {_ms(metrics['time'])}{_thresholds(cfg.warn_latency, cfg.crit_latency)}")
        summary = f"{label}: {', '.join(notes)}"
        if problem:
            return CheckResult(Status.critical, f"{label}: {problem}\n{summary}", metrics)
        return CheckResult(
            _latency_status(metrics["time"], cfg.warn_latency, cfg.crit_latency), summary, metrics
        )

    async def _exchange(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        timeout: float,
        metrics: dict[str, float],
        notes: list[str],
    ) -> str | None:
        """Send, then read until the expected text shows up; the problem, or None."""
        cfg = self.config
        payload = unescape(cfg.send) if cfg.send else b""
        expect = unescape(cfg.expect) if cfg.expect else b""
        data = bytearray()
        try:
            async with asyncio.timeout(timeout):
                if payload:
                    writer.write(payload)
                    await writer.drain()
                    notes.append(f"sent {len(payload)} bytes")
                if not expect:
                    return None
                while expect not in data and len(data) < cfg.read_limit:
                    chunk = await reader.read(cfg.read_limit - len(data))
                    if not chunk:
                        break
                    data += chunk
        except TimeoutError:
            if not expect:
                return f"send timed out after {timeout:g}s"
            why = f"no {_quote(expect)} within {timeout:g}s"
        except OSError as exc:
            return f"{'read' if expect else 'send'} failed: {describe_error(exc)}"
        else:
            if expect in data:
                metrics["bytes_read"] = float(len(data))
                notes.append(f"got {_quote(expect)} in {len(data)} bytes")
                return None
            why = (
                "connection closed" if len(data) < cfg.read_limit else f"read limit {cfg.read_limit} reached"
            )
            why = f"{why} without {_quote(expect)}"
        metrics["bytes_read"] = float(len(data))
        return f"{why}; read {len(data)} bytes: {_quote(bytes(data[:120]))}"


def client_context(verify: bool, ca_file: str | None) -> ssl.SSLContext:
    if not verify:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return context
    return ssl.create_default_context(cafile=ca_file)


def _latency_status(elapsed: float, warn: timedelta | None, crit: timedelta | None) -> Status:
    if crit is not None and elapsed >= crit.total_seconds():
        return Status.critical
    if warn is not None and elapsed >= warn.total_seconds():
        return Status.warning
    return Status.ok


def _thresholds(warn: timedelta | None, crit: timedelta | None) -> str:
    parts = [
        f"{name} at {_ms(limit.total_seconds())}"
        for name, limit in (("warning", warn), ("critical", crit))
        if limit is not None
    ]
    return f" ({', '.join(parts)})" if parts else ""


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms" if seconds < 0.1 else f"{seconds * 1000:.0f} ms"


def _quote(data: bytes) -> str:
    return repr(data.decode("utf-8", "replace"))


KIND = Kind(
    name="tcp",
    config=TcpConfig,
    build=TcpCheck,
    summary="connect to host:port (optionally TLS), send and expect text; connect and total time",
)
