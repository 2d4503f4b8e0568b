"""The target's certificates: files read and endpoints fetched with the ``tls`` check's code."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from cryptography import x509

from maintd.checks.base import RunContext
from maintd.checks.command import substitute
from maintd.checks.tcp.net import endpoint, hostport
from maintd.checks.tls.certs import parse_certificates
from maintd.checks.tls.fetch import FetchError, fetch_chain
from maintd.tasks.certificates import CertificatesConfig

FILE_LIMIT = 1 << 20  # a certificate file larger than this is not one
_DEFAULT_PORTS = {"none": 443, "smtp": 25, "postgres": 5432}


@dataclass
class Item:
    """One certificate of the inventory, as found (or why it could not be read)."""

    label: str  # the file's path, or host:port
    path: str | None = None  # set for files
    chain: list[x509.Certificate] = field(default_factory=list)
    error: str | None = None

    def days_left(self, now: datetime) -> float:
        """Until the earliest-expiring certificate of the chain expires (negative: expired)."""
        earliest = min(cert.not_valid_after_utc for cert in self.chain)
        return (earliest - now).total_seconds() / 86400

    @property
    def expires(self) -> datetime:
        return min(cert.not_valid_after_utc for cert in self.chain)


def file_paths(cfg: CertificatesConfig, ctx: RunContext) -> list[str]:
    """The files to inventory, placeholders filled; ValueError names a missing connection key."""
    if cfg.files:
        return substitute(cfg.files, ctx)
    if cfg.acme is not None:
        return substitute([cfg.acme.managed], ctx)
    cert = ctx.target.connection.get("cert")
    return [str(cert)] if cert else []


def has_endpoint(cfg: CertificatesConfig, ctx: RunContext) -> bool:
    conn = ctx.target.connection
    return bool(cfg.host or conn.get("host") or str(conn.get("url", "")).startswith("https://"))


async def collect(paths: list[str]) -> list[Item]:
    """The certificate files (the endpoint is fetched separately, after any renewal)."""
    return [await asyncio.to_thread(read_file, path) for path in paths]


def read_file(path: str) -> Item:
    try:
        with Path(path).open("rb") as handle:
            data = handle.read(FILE_LIMIT + 1)
    except OSError as exc:
        return Item(path, path, error=f"cannot read {path}: {exc.strerror or exc}")
    if len(data) > FILE_LIMIT:
        return Item(path, path, error=f"{path}: larger than {FILE_LIMIT // 1024} KiB, not a certificate file")
    try:
        return Item(path, path, chain=parse_certificates(data))
    except ValueError as exc:
        return Item(path, path, error=f"{path}: no certificate in it ({exc})")


async def fetch(cfg: CertificatesConfig, ctx: RunContext) -> Item:
    where = endpoint(cfg.host, cfg.port, ctx.target.connection, _DEFAULT_PORTS[cfg.starttls])
    if isinstance(where, str):
        return Item(f"target {ctx.target.name}", error=where)
    host, port = where
    label = hostport(host, port)
    timeout = min(cfg.timeout.total_seconds(), ctx.seconds_left())
    try:
        presented = await fetch_chain(host, port, cfg.server_name or host, cfg.starttls, timeout)
        chain = [x509.load_der_x509_certificate(der) for der in presented.chain]
    except FetchError as exc:
        return Item(label, error=f"{label}: {exc}")
    except ValueError as exc:
        return Item(label, error=f"{label}: the server presented an unreadable certificate: {exc}")
    return Item(label, chain=chain)


def names(cert: x509.Certificate) -> tuple[list[str], list[str]]:
    """The DNS names and IP addresses of the subjectAltName (the CN does not count)."""
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (x509.ExtensionNotFound, ValueError):
        return [], []
    return list(san.get_values_for_type(x509.DNSName)), [
        str(a) for a in san.get_values_for_type(x509.IPAddress)
    ]
