"""Judging certificates: expiry, validity, names, issuer, keys, signatures and (optionally) the chain.

Everything is computed at the clock's ``now``, so tests can move time.
"""

from __future__ import annotations

import contextlib
import ipaddress
import re
import warnings
from dataclasses import dataclass, field
from datetime import datetime

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa
from cryptography.utils import CryptographyDeprecationWarning
from cryptography.x509 import verification
from cryptography.x509.oid import NameOID

from maintd.checks.base import Status

_CURVES = {"secp256r1": "P-256", "secp384r1": "P-384", "secp521r1": "P-521"}
_WEAK_HASHES = {"sha1": "SHA-1", "md5": "MD5"}
_ENCOUNTERED = re.compile(r" \(encountered processing <Certificate\(subject=<Name\((.*?)\)>, \.\.\.\)>\)")


@dataclass(frozen=True)
class Policy:
    warn_days: float
    crit_days: float
    name: str | None  # the name the leaf must cover; None: not checked
    expect_issuer: str | None
    min_rsa_bits: int
    min_ec_bits: int
    allow_weak_signatures: bool
    trust: list[x509.Certificate] | None  # verify the chain against these; None: no verification
    trust_label: str = ""


@dataclass(frozen=True)
class Finding:
    status: Status
    text: str


@dataclass
class Verdict:
    findings: list[Finding] = field(default_factory=list)
    days_left: float = float("inf")
    key_bits: float = 0.0
    details: list[str] = field(default_factory=list)


def parse_certificates(data: bytes) -> list[x509.Certificate]:
    """All certificates in PEM (several, in order) or one in DER; ValueError when there is none."""
    with warnings.catch_warnings():  # e.g. negative serial numbers in old roots: reported elsewhere, not here
        warnings.simplefilter("ignore", CryptographyDeprecationWarning)
        if b"-----BEGIN" in data:
            return x509.load_pem_x509_certificates(data)
        return [x509.load_der_x509_certificate(data)]


def judge(chain: list[x509.Certificate], policy: Policy, now: datetime) -> Verdict:
    """The findings for one chain as presented (leaf first)."""
    verdict = Verdict()
    leaf = chain[0]
    earliest = min(chain, key=lambda cert: cert.not_valid_after_utc)
    days = (earliest.not_valid_after_utc - now).total_seconds() / 86400
    verdict.days_left = days
    verdict.findings.append(_expiry(earliest, days, policy))
    for cert in chain:
        if cert.not_valid_before_utc > now:
            verdict.findings.append(
                Finding(
                    Status.critical, f"{_who(cert)} is not valid before {_when(cert.not_valid_before_utc)}"
                )
            )
        weak = _WEAK_HASHES.get(_hash_name(cert))
        if weak and not policy.allow_weak_signatures and not _self_signed(cert):
            verdict.findings.append(Finding(Status.critical, f"{_who(cert)} is signed with {weak}"))
    if policy.name is not None and not covers(leaf, policy.name):
        verdict.findings.append(
            Finding(Status.critical, f"{policy.name} is not covered by the certificate ({_names(leaf)})")
        )
    issuer = leaf.issuer.rfc4514_string()
    if policy.expect_issuer and policy.expect_issuer.lower() not in issuer.lower():
        verdict.findings.append(
            Finding(Status.critical, f"issuer {issuer!r} does not contain {policy.expect_issuer!r}")
        )
    key, bits, weak_key = _key(leaf, policy)
    verdict.key_bits = float(bits)
    if weak_key:
        verdict.findings.append(Finding(Status.warning, weak_key))
    if policy.trust is not None:
        problem = verify_chain(chain, policy.trust, now)
        if problem:
            verdict.findings.append(
                Finding(Status.critical, f"chain does not verify against {policy.trust_label}: {problem}")
            )
    for index, cert in enumerate(chain):
        left = (cert.not_valid_after_utc - now).total_seconds() / 86400
        verdict.details.append(
            f"  {index}: {_who(cert)}, issued by {_short(cert.issuer)}; "
            f"{key if cert is leaf else _key(cert, policy)[0]}; {_signature(cert)}; "
            f"valid {_when(cert.not_valid_before_utc)} to {_when(cert.not_valid_after_utc)}"
            f" ({left:.1f} days left)"
        )
    return verdict


def _expiry(cert: x509.Certificate, days: float, policy: Policy) -> Finding:
    when = _when(cert.not_valid_after_utc)
    who = _who(cert)
    if days < 0:
        return Finding(Status.critical, f"{who} expired {-days:.1f} days ago on {when}")
    text = f"{who} expires in {days:.1f} days on {when}"
    if days < policy.crit_days:
        return Finding(Status.critical, f"{text} (critical below {policy.crit_days:g} days)")
    if days < policy.warn_days:
        return Finding(Status.warning, f"{text} (warning below {policy.warn_days:g} days)")
    return Finding(
        Status.ok, f"{text} (warning below {policy.warn_days:g} days, critical below {policy.crit_days:g})"
    )


def covers(cert: x509.Certificate, name: str) -> bool:
    """RFC 6125: the subjectAltName (never the CN) names ``name``; ``*`` stands for one whole left label."""
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (x509.ExtensionNotFound, ValueError):
        return False
    try:
        address = ipaddress.ip_address(name)
    except ValueError:
        address = None
    if address is not None:
        return address in san.get_values_for_type(x509.IPAddress)
    wanted = name.lower().rstrip(".")
    with contextlib.suppress(UnicodeError):  # an internationalised name compares as its A-labels
        wanted = wanted.encode("idna").decode("ascii")
    head, _, rest = wanted.partition(".")
    for pattern in san.get_values_for_type(x509.DNSName):
        pattern = pattern.lower().rstrip(".")
        if pattern == wanted or (pattern.startswith("*.") and head and rest and pattern[2:] == rest):
            return True
    return False


def verify_chain(chain: list[x509.Certificate], trust: list[x509.Certificate], now: datetime) -> str | None:
    """Why the presented chain does not lead to one of ``trust`` at ``now``; None when it does.

    Signatures, validity periods and CA constraints (the Web PKI profile for CAs);
    the leaf's names and key usages are judged separately.
    """
    if not trust:
        return "the CA bundle holds no certificates"
    verifier = (
        verification.PolicyBuilder()
        .store(verification.Store(trust))
        .time(now)
        .extension_policies(
            ca_policy=verification.ExtensionPolicy.webpki_defaults_ca(),
            ee_policy=verification.ExtensionPolicy.permit_all(),
        )
        .build_client_verifier()
    )
    try:
        verifier.verify(chain[0], chain[1:])
    except (verification.VerificationError, ValueError, UnsupportedAlgorithm) as exc:
        message = str(exc).removeprefix("validation failed: ")
        if message.startswith("candidates exhausted: all candidates exhausted with no interior errors"):
            return "no path from the leaf to a trusted root (an intermediate missing, or an unknown CA)"
        return _ENCOUNTERED.sub(lambda m: f" (at {m.group(1)})", message)
    return None


def _key(cert: x509.Certificate, policy: Policy) -> tuple[str, int, str | None]:
    """Description, size in bits, and why it is too weak (or None)."""
    try:
        key = cert.public_key()
    except (UnsupportedAlgorithm, ValueError) as exc:
        return f"unreadable key ({exc})", 0, None
    if isinstance(key, rsa.RSAPublicKey):
        weak = key.key_size < policy.min_rsa_bits
        why = f"RSA key of {key.key_size} bits, below {policy.min_rsa_bits}" if weak else None
        return f"RSA {key.key_size} bits", key.key_size, why
    if isinstance(key, ec.EllipticCurvePublicKey):
        curve = _CURVES.get(key.curve.name, key.curve.name)
        weak = key.key_size < policy.min_ec_bits
        return (
            f"EC {curve}",
            key.key_size,
            f"EC key on {curve}, below {policy.min_ec_bits} bits" if weak else None,
        )
    if isinstance(key, ed25519.Ed25519PublicKey):
        return "Ed25519", 256, None
    if isinstance(key, ed448.Ed448PublicKey):
        return "Ed448", 456, None
    if isinstance(key, dsa.DSAPublicKey):
        return f"DSA {key.key_size} bits", key.key_size, "DSA key: TLS clients no longer accept DSA"
    return type(key).__name__, 0, None


def _hash_name(cert: x509.Certificate) -> str:
    try:
        algorithm = cert.signature_hash_algorithm
    except UnsupportedAlgorithm:
        return "unknown"
    return algorithm.name if algorithm is not None else ""


def _signature(cert: x509.Certificate) -> str:
    name = _hash_name(cert) or getattr(
        cert.signature_algorithm_oid, "_name", "unknown"
    )  # Ed25519 has no hash
    return f"{_WEAK_HASHES.get(name, name)} signature"


def _self_signed(cert: x509.Certificate) -> bool:
    return cert.issuer == cert.subject


def _names(cert: x509.Certificate) -> str:
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return f"no subjectAltName; CN {_short(cert.subject)} does not count"
    except ValueError as exc:
        return f"unreadable subjectAltName: {exc}"
    names = [f"DNS:{n}" for n in san.get_values_for_type(x509.DNSName)]
    names += [f"IP:{a}" for a in san.get_values_for_type(x509.IPAddress)]
    return ", ".join(names) or "no DNS or IP names"


def _short(name: x509.Name) -> str:
    common = name.get_attributes_for_oid(NameOID.COMMON_NAME)
    return f"CN={common[0].value!s}" if common else (name.rfc4514_string() or "(empty name)")


def _who(cert: x509.Certificate) -> str:
    return _short(cert.subject)


def _when(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC")
