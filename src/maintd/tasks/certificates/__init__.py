"""``certificates``: the seed's manage_certificates, an inventory of certificates renewed through ACME.

Each run takes its target's certificates (certificate files and a TLS endpoint, read by the
``tls`` check's code), reports days left, names and issuer of each, and below ``renew_before``
renews the one the ``acme`` section manages (the ``acme`` library; new files written beside,
verified, then renamed into place with the previous kept; then the deploy hook). A certificate
that is due and not renewable is a warning, and a critical below ``critical_before``: the task's
``alert`` setting turns that into an incident (see docs/kinds/certificates.md for the P0).
The ACME client and cryptography are imported only when a run starts (``action``).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Literal, Self

from pydantic import Field, model_validator

from maintd.checks.base import Kind, lazy
from maintd.plan.base import StrictModel
from maintd.plan.types import Duration

__all__ = ["KIND", "AcmeSettings", "CertificatesConfig"]

KeyType = Literal["ec-p256", "ec-p384", "rsa-2048", "rsa-3072", "rsa-4096"]


class AcmeSettings(StrictModel):
    """How the certificate is renewed: an ACME account, an http-01 challenge, where files go."""

    directory: str = Field(
        pattern=r"^https?://",
        description="the ACME directory URL, e.g. https://acme-v02.api.letsencrypt.org/directory",
    )
    account_key: str = Field(description="the account's private key (PEM); created (mode 0600) if missing")
    contact: list[str] = Field(default=[], description="e-mail addresses registered with the account")
    ca_bundle: str | None = Field(
        default=None, description="CA bundle trusted for the ACME server's HTTPS; default: the system's"
    )
    challenge: Literal["webroot", "standalone"] = Field(
        default="webroot",
        description="http-01 through files in webroot (served by the web server) or a listener of our own",
    )
    webroot: str | None = Field(
        default=None, description="the web server's document root; tokens go to .well-known/acme-challenge/"
    )
    listen_address: str = Field(default="0.0.0.0", description="standalone: the address to listen on")
    listen_port: int = Field(default=80, ge=1, le=65535, description="standalone: the port to listen on")
    key_type: KeyType = Field(default="ec-p256", description="the new certificate's key")
    domains: list[str] = Field(
        default=[], description="names to request; default: the current certificate's DNS and IP names"
    )
    cert_path: str | None = Field(default=None, description="where the new leaf certificate is written")
    chain_path: str | None = Field(default=None, description="where the intermediates are written")
    fullchain_path: str | None = Field(default=None, description="where leaf and intermediates are written")
    key_path: str = Field(description="where the new private key is written (mode 0600)")
    trust_roots: str | None = Field(
        default=None, description="a CA bundle the new chain must verify against before it is installed"
    )
    deploy_hook: list[str] = Field(
        default=[], description="run after a renewal is installed (argument list, e.g. nginx -s reload)"
    )
    hook_timeout: Duration = Field(
        default=timedelta(minutes=1), description="time allowed for the deploy hook"
    )
    network_timeout: Duration = Field(
        default=timedelta(seconds=30), description="time allowed for each request to the ACME server"
    )

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.challenge == "webroot" and not self.webroot:
            raise ValueError("challenge: webroot needs acme.webroot")
        if not (self.cert_path or self.fullchain_path):
            raise ValueError("acme needs cert_path or fullchain_path: where the renewed certificate goes")
        written = [p for p in (self.cert_path, self.chain_path, self.fullchain_path, self.key_path) if p]
        if len(set(written)) != len(written):
            raise ValueError("cert_path, chain_path, fullchain_path and key_path must be different files")
        return self

    @property
    def managed(self) -> str:
        """The file whose certificate decides when to renew."""
        return self.fullchain_path or self.cert_path or ""


class CertificatesConfig(StrictModel):
    files: list[str] = Field(
        default=[],
        description="certificate files (PEM or DER); default: acme's fullchain_path or cert_path, "
        "else the target's connection.cert",
    )
    host: str | None = Field(
        default=None, description="a TLS endpoint; default: the target's connection.host"
    )
    port: int | None = Field(
        default=None, ge=1, le=65535, description="default: the target's connection.port, else 443"
    )
    server_name: str | None = Field(default=None, description="SNI sent to the endpoint; default: host")
    starttls: Literal["none", "smtp", "postgres"] = Field(
        default="none", description="none (TLS from the first byte), smtp or postgres (STARTTLS)"
    )
    renew_before: Duration = Field(
        default=timedelta(days=30), description="renew (or warn, if not renewable) when fewer days are left"
    )
    critical_before: Duration = Field(
        default=timedelta(days=7), description="critical when fewer days are left and not renewed"
    )
    timeout: Duration = Field(default=timedelta(seconds=10), description="connect and handshake time allowed")
    acme: AcmeSettings | None = Field(default=None, description="renew through ACME; none: observe only")

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.critical_before > self.renew_before:
            raise ValueError("critical_before must not be longer than renew_before")
        if self.timeout.total_seconds() <= 0:
            raise ValueError("timeout must be longer than 0s")
        return self


KIND = Kind(
    name="certificates",
    config=CertificatesConfig,
    build=lazy("maintd.tasks.certificates.action"),
    summary="certificates of files and endpoints: days left, names, issuer; ACME renewal, deploy hook",
    changes=lambda config: config.acme is not None,
)
