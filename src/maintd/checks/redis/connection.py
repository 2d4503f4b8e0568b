"""Where a Redis target is and how to reach it: ``connection.url`` or host/port/db."""

from __future__ import annotations

import ssl
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import unquote, urlsplit

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import (
    AuthenticationError,
    AuthorizationError,
    ConnectionError,
    NoPermissionError,
    RedisError,
)
from redis.exceptions import TimeoutError as RedisTimeout

__all__ = ["AuthenticationError", "Endpoint", "RedisError", "connect", "describe_error", "endpoint_of"]

DEFAULT_PORT = 6379


@dataclass(frozen=True)
class Endpoint:
    host: str
    port: int
    db: int = 0
    tls: bool = False
    verify_tls: bool = True
    ca_file: str | None = None
    username: str | None = None
    password: str | None = None  # from a url, when the target has no password secret

    def __str__(self) -> str:  # never shows credentials
        scheme = "rediss" if self.tls else "redis"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{scheme}://{host}:{self.port}"

    def elsewhere(self, host: str, port: int) -> Endpoint:
        """The same credentials and TLS settings on another server (a replica's master)."""
        return replace(self, host=host, port=port, db=0)


def endpoint_of(connection: dict[str, Any], username: str | None, verify_tls: bool) -> Endpoint:
    """From the target's connection: ``url`` (redis:// or rediss://), else host/port/db/tls."""
    url = connection.get("url")
    if url:
        parts = urlsplit(str(url))
        if parts.scheme not in ("redis", "rediss"):
            raise ValueError(f"connection.url must start with redis:// or rediss://, not {parts.scheme}://")
        path = parts.path.strip("/")
        try:
            db = int(path) if path else int(connection.get("db", 0))
            port = parts.port or DEFAULT_PORT
        except ValueError as exc:
            raise ValueError(f"connection.url has a bad port or database number: {exc}") from None
        return Endpoint(
            host=parts.hostname or "127.0.0.1",
            port=port,
            db=db,
            tls=parts.scheme == "rediss",
            verify_tls=verify_tls,
            ca_file=connection.get("ca_file"),
            username=username or (unquote(parts.username) if parts.username else connection.get("username")),
            password=unquote(parts.password) if parts.password else None,
        )
    host = connection.get("host")
    if not host:
        raise ValueError("no connection.url or connection.host")
    try:
        port, db = int(connection.get("port", DEFAULT_PORT)), int(connection.get("db", 0))
    except (TypeError, ValueError) as exc:
        raise ValueError(f"connection.port and connection.db must be numbers: {exc}") from None
    return Endpoint(
        host=str(host),
        port=port,
        db=db,
        tls=bool(connection.get("tls", False)),
        verify_tls=verify_tls,
        ca_file=connection.get("ca_file"),
        username=username or connection.get("username"),
    )


def connect(endpoint: Endpoint, password: str | None, *, timeout: float, db: int = 0) -> aioredis.Redis:
    """A client that fails fast: no retries, socket timeouts no longer than what is left of the run.

    ``db`` 0 unless the caller reads keys: PING and INFO need no database, and SELECT would need
    another ACL permission."""
    tls: dict[str, Any] = {}
    if endpoint.tls:
        tls = {
            "ssl": True,
            "ssl_cert_reqs": ssl.CERT_REQUIRED if endpoint.verify_tls else ssl.CERT_NONE,
            "ssl_check_hostname": endpoint.verify_tls,
            "ssl_ca_certs": endpoint.ca_file,
        }
    return aioredis.Redis(
        host=endpoint.host,
        port=endpoint.port,
        db=db,
        username=endpoint.username,
        password=password,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        retry=Retry(NoBackoff(), 0),
        single_connection_client=True,
        protocol=2,  # RESP2 works on every server version; RESP3 (HELLO) needs Redis 6
        **tls,
    )


def describe_error(exc: BaseException, budget: float) -> str:
    """One line for the output; never includes a password (redis-py's messages do not)."""
    if isinstance(exc, RedisTimeout | TimeoutError):
        return f"timed out after {budget:.1f}s"
    if isinstance(exc, AuthenticationError):
        return f"authentication failed: {exc}"
    if isinstance(exc, AuthorizationError | NoPermissionError):
        return f"not allowed: {exc}"
    if isinstance(exc, ConnectionError | OSError):
        return f"cannot connect: {exc}"
    return f"{type(exc).__name__}: {exc}"
