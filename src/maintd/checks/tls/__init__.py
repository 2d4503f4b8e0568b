"""``tls``: the certificates of a live endpoint (TLS, SMTP STARTTLS, PostgreSQL) or of PEM files.

Reports the days until the earliest-expiring certificate of the chain expires
(seed: warning below 30 days, critical below 7), certificates not yet valid,
whether the leaf covers the expected name, its issuer, key and signatures,
and optionally whether the chain verifies against a CA bundle, all at the
clock's time. cryptography is imported only when a check runs (``check`` holds
what uses it).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Literal, Self

from pydantic import Field, model_validator

from maintd.checks.base import Kind, lazy
from maintd.plan.base import StrictModel
from maintd.plan.types import Duration


class TlsConfig(StrictModel):
    host: str | None = Field(default=None, description="endpoint host; default: the target's connection.host")
    port: int | None = Field(
        default=None,
        ge=1,
        le=65535,
        description="default: the target's connection.port, else 443 (25 for smtp, 5432 for postgres)",
    )
    server_name: str | None = Field(
        default=None, description="SNI and the name the leaf must cover; default: host (endpoints only)"
    )
    check_name: bool = Field(default=True, description="check that the leaf certificate covers server_name")
    starttls: Literal["none", "smtp", "postgres"] = Field(
        default="none", description="none (TLS from the first byte), smtp (STARTTLS) or postgres (SSLRequest)"
    )
    files: list[str] = Field(default=[], description="PEM or DER files to check instead of an endpoint")
    directory: str | None = Field(
        default=None, description="a directory whose *.pem, *.crt, *.cer, *.der files are checked"
    )
    warn_days: float = Field(default=30, ge=0, description="warning when a certificate expires sooner")
    crit_days: float = Field(default=7, ge=0, description="critical when a certificate expires sooner")
    expect_issuer: str | None = Field(default=None, description="text the leaf's issuer must contain")
    min_rsa_bits: int = Field(default=2048, ge=0, description="warning for a smaller RSA (or DSA) leaf key")
    min_ec_bits: int = Field(default=256, ge=0, description="warning for a smaller elliptic-curve leaf key")
    allow_weak_signatures: bool = Field(
        default=False, description="accept SHA-1 and MD5 signatures below the root"
    )
    verify: bool = Field(default=False, description="verify the chain against a CA bundle")
    ca_file: str | None = Field(default=None, description="the CA bundle for verify; default: the system's")
    timeout: Duration = Field(
        default=timedelta(seconds=10), description="time allowed for connect and handshake"
    )

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if (self.files or self.directory) and (self.host or self.port or self.starttls != "none"):
            raise ValueError("check an endpoint (host, port, starttls) or certificate files, not both")
        if self.crit_days > self.warn_days:
            raise ValueError("crit_days must not be more than warn_days")
        if self.ca_file and not self.verify:
            raise ValueError("ca_file is only used with verify: true")
        if self.timeout.total_seconds() <= 0:
            raise ValueError("timeout must be longer than 0s")
        return self


KIND = Kind(
    name="tls",
    config=TlsConfig,
    build=lazy("maintd.checks.tls.check"),
    summary="certificates of an endpoint (TLS, SMTP or PostgreSQL STARTTLS) or files: days left, names, keys",
)
