"""A small certificate authority for tests: every date, name and key is chosen by the test."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from tests.conftest import T0

PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
DAY = timedelta(days=1)


def ec_key(curve: ec.EllipticCurve | None = None) -> PrivateKey:
    return ec.generate_private_key(curve or ec.SECP256R1())


def rsa_key(bits: int) -> PrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


@dataclass
class Issued:
    cert: x509.Certificate
    key: PrivateKey

    def issue(
        self,
        common_name: str,
        *,
        dns: tuple[str, ...] = (),
        ips: tuple[str, ...] = (),
        not_before: datetime = T0 - DAY,
        not_after: datetime = T0 + 90 * DAY,
        key: PrivateKey | None = None,
        ca: bool = False,
    ) -> Issued:
        """A certificate signed by this one: a leaf for ``dns``/``ips``, or an intermediate CA."""
        return _build(common_name, self, dns, ips, not_before, not_after, key or ec_key(), ca)

    def cert_pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    def key_pem(self) -> bytes:
        return self.key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )


def root(common_name: str = "maintd test root", *, not_after: datetime = T0 + 3650 * DAY) -> Issued:
    return _build(common_name, None, (), (), T0 - 365 * DAY, not_after, ec_key(), True)


def write_pem(path: Path, *chain: Issued, key: Issued | None = None) -> Path:
    """``chain`` in order (leaf first), then the private key of ``key`` if given."""
    path.write_bytes(b"".join(c.cert_pem() for c in chain) + (key.key_pem() if key else b""))
    return path


def _build(
    common_name: str,
    issuer: Issued | None,
    dns: tuple[str, ...],
    ips: tuple[str, ...],
    not_before: datetime,
    not_after: datetime,
    key: PrivateKey,
    ca: bool,
) -> Issued:
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    signer = issuer.key if issuer else key
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer.cert.subject if issuer else subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(signer.public_key()), critical=False
        )
    )
    if ca:
        builder = builder.add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
    else:
        builder = builder.add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
    names: list[x509.GeneralName] = [x509.DNSName(name) for name in dns]
    names += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ips]
    if names:
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    return Issued(builder.sign(signer, hashes.SHA256()), key)
