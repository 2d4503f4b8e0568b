"""The tls kind: certificates made in the test, presented by real TLS, SMTP and PostgreSQL servers
on loopback or written to files; the injected clock moves "now"."""

from __future__ import annotations

import asyncio
import socket
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from pydantic import ValidationError

from maintd.checks.base import CheckResult, Status
from maintd.checks.tls.fetch import presented_chain
from maintd.clock import FakeClock
from maintd.plan.models import Target
from tests.conftest import T0, run
from tests.kinds import REGISTRY, make_target, run_kind
from tests.tls_support.certs import DAY, Issued, ec_key, root, rsa_key, write_pem
from tests.tls_support.postgres import postgres_with_tls
from tests.tls_support.servers import refuses_ssl, serve, smtp_server, tls_server

FAR = (
    "CN=www.example.test expires in 90.0 days on 2027-02-25 01:00 UTC"
    " (warning below 30 days, critical below 7)"
)


@dataclass
class Pki:
    ca: Issued
    inter: Issued
    leaf: Issued  # www.example.test and 127.0.0.1, valid T0 - 1 day to T0 + 90 days


@pytest.fixture(scope="module")
def pki() -> Pki:
    ca = root()
    inter = ca.issue("maintd test intermediate", ca=True)
    return Pki(ca, inter, inter.issue("www.example.test", dns=("www.example.test",), ips=("127.0.0.1",)))


def served(
    directory: Path,
    chain: list[Issued],
    by_name: dict[str, list[Issued]] | None = None,
    clock: FakeClock | None = None,
    **params: Any,
) -> CheckResult:
    """Run the kind against a TLS server on loopback that presents ``chain``."""

    async def go() -> CheckResult:
        async with tls_server(directory, chain, by_name) as port:
            return await run_kind("tls", {"host": "127.0.0.1", "port": port, **params}, clock=clock)

    return run(go())  # type: ignore[no-any-return]


def from_files(*paths: Path, clock: FakeClock | None = None, **params: Any) -> CheckResult:
    return run(run_kind("tls", {"files": [str(p) for p in paths], **params}, clock=clock))  # type: ignore[no-any-return]


def headline(result: CheckResult) -> str:
    """The first line without the endpoint or file it names."""
    return result.output.splitlines()[0].split(": ", 1)[1]


def test_a_live_endpoint_presents_its_whole_chain_and_is_ok_far_from_expiry(tmp_path, pki):
    result = served(tmp_path, [pki.leaf, pki.inter, pki.ca], server_name="www.example.test")
    assert result.status is Status.ok, result.output
    first, protocol, *chain = result.output.splitlines()
    assert first.startswith("127.0.0.1:") and first.endswith(f" as www.example.test: {FAR}")
    assert protocol.startswith("TLSv1.3 ") and protocol.endswith("chain of 3 as presented:")
    assert [line.split(",")[0] for line in chain] == [
        "  0: CN=www.example.test",
        "  1: CN=maintd test intermediate",
        "  2: CN=maintd test root",
    ]
    assert result.metrics["days_left"] == 90.0
    assert result.metrics["chain_length"] == 3
    assert result.metrics["key_bits"] == 256
    assert 0 <= result.metrics["time"] < 5


@pytest.mark.parametrize(
    ("days_later", "status", "text"),
    [
        (
            0,
            Status.ok,
            "expires in 90.0 days on 2027-02-25 01:00 UTC (warning below 30 days, critical below 7)",
        ),
        (60.5, Status.warning, "expires in 29.5 days on 2027-02-25 01:00 UTC (warning below 30 days)"),
        (83.5, Status.critical, "expires in 6.5 days on 2027-02-25 01:00 UTC (critical below 7 days)"),
        (91, Status.critical, "expired 1.0 days ago on 2027-02-25 01:00 UTC"),
    ],
)
def test_days_left_count_from_the_clock_against_the_thresholds(tmp_path, pki, days_later, status, text):
    path = write_pem(tmp_path / "fullchain.pem", pki.leaf, pki.inter)
    result = from_files(path, clock=FakeClock(T0 + timedelta(days=days_later)))
    assert result.status is status
    assert result.output.startswith(f"{path}: CN=www.example.test {text}")
    assert result.metrics["days_left"] == 90 - days_later


@pytest.mark.parametrize(
    ("params", "status"),
    [({"warn_days": 100}, Status.warning), ({"warn_days": 100, "crit_days": 95}, Status.critical)],
)
def test_the_thresholds_are_params(tmp_path, pki, params, status):
    assert from_files(write_pem(tmp_path / "c.pem", pki.leaf), **params).status is status


def test_the_earliest_expiring_certificate_of_the_chain_decides(tmp_path, pki):
    short = pki.ca.issue("short-lived intermediate", ca=True, not_after=T0 + 20 * DAY)
    leaf = short.issue("www.example.test", dns=("www.example.test",))
    result = served(tmp_path, [leaf, short], server_name="www.example.test")
    assert result.status is Status.warning
    assert headline(result).startswith("CN=short-lived intermediate expires in 20.0 days")
    assert result.metrics["days_left"] == 20


def test_a_certificate_not_yet_valid_is_critical(tmp_path, pki):
    early = pki.inter.issue("www.example.test", dns=("www.example.test",), not_before=T0 + 2 * DAY)
    result = from_files(write_pem(tmp_path / "early.pem", early, pki.inter))
    assert result.status is Status.critical
    assert headline(result).startswith("CN=www.example.test is not valid before 2026-11-29 01:00 UTC; ")


@pytest.mark.parametrize(
    ("name", "covered"),
    [
        ("www.example.test", True),
        ("WWW.Example.Test.", True),
        ("api.apps.example.test", True),
        ("a.b.apps.example.test", False),  # a wildcard stands for one label
        ("apps.example.test", False),  # and not for none
        ("example.test", False),
        ("127.0.0.1", True),
        ("::1", True),
        ("10.0.0.1", False),
    ],
)
def test_the_leaf_must_cover_the_expected_name_in_its_subject_alt_names(tmp_path, pki, name, covered):
    leaf = pki.inter.issue("x", dns=("www.example.test", "*.apps.example.test"), ips=("127.0.0.1", "::1"))
    result = from_files(write_pem(tmp_path / "leaf.pem", leaf), server_name=name)
    assert result.status is (Status.ok if covered else Status.critical)
    if not covered:
        assert headline(result).startswith(
            f"{name} is not covered by the certificate "
            "(DNS:www.example.test, DNS:*.apps.example.test, IP:127.0.0.1, IP:::1)"
        )


def test_a_common_name_alone_covers_nothing(tmp_path, pki):
    result = from_files(
        write_pem(tmp_path / "cn.pem", pki.inter.issue("www.example.test")), server_name="www.example.test"
    )
    assert result.status is Status.critical
    assert "(no subjectAltName; CN CN=www.example.test does not count)" in result.output


def test_the_name_defaults_to_the_host_and_can_be_left_unchecked(tmp_path, pki):
    other = pki.inter.issue("db.example.test", dns=("db.example.test",))
    assert served(tmp_path, [other]).status is Status.critical  # 127.0.0.1 is not among its names
    assert served(tmp_path, [other], check_name=False).status is Status.ok


def test_sni_asks_the_server_for_the_certificate_of_the_server_name(tmp_path, pki):
    api = pki.inter.issue("api.example.test", dns=("api.example.test",))
    by_name = {"api.example.test": [api, pki.inter]}
    result = served(tmp_path, [pki.leaf, pki.inter], by_name, server_name="api.example.test")
    assert result.status is Status.ok, result.output
    assert headline(result).startswith("CN=api.example.test expires")
    assert (
        served(tmp_path, [pki.leaf, pki.inter], by_name)
        .output.split("\n")[2]
        .startswith("  0: CN=www.example")
    )


def test_an_unexpected_issuer_is_critical(tmp_path, pki):
    path = write_pem(tmp_path / "c.pem", pki.leaf, pki.inter)
    result = from_files(path, expect_issuer="Let's Encrypt")
    assert result.status is Status.critical
    assert headline(result).startswith(
        "issuer 'CN=maintd test intermediate' does not contain \"Let's Encrypt\""
    )
    assert from_files(path, expect_issuer="TEST INTERMEDIATE").status is Status.ok


@pytest.mark.parametrize(
    ("key", "params", "status", "described", "bits"),
    [
        (lambda: ec_key(ec.SECP384R1()), {}, Status.ok, "EC P-384", 384),
        (lambda: ec_key(ec.SECP224R1()), {}, Status.warning, "EC secp224r1", 224),
        (lambda: rsa_key(1024), {}, Status.warning, "RSA 1024 bits", 1024),
        (lambda: rsa_key(1024), {"min_rsa_bits": 1024}, Status.ok, "RSA 1024 bits", 1024),
    ],
    ids=["p384", "p224", "rsa1024", "rsa1024-allowed"],
)
def test_small_leaf_keys_are_a_warning(tmp_path, pki, key, params, status, described, bits):
    leaf = pki.inter.issue("k", key=key())
    result = from_files(write_pem(tmp_path / "k.pem", leaf, pki.inter), **params)
    assert result.status is status
    assert f"  0: CN=k, issued by CN=maintd test intermediate; {described};" in result.output
    assert result.metrics["key_bits"] == bits
    if status is Status.warning:
        assert headline(result).startswith(
            ("RSA key of 1024 bits, below 2048", "EC key on secp224r1, below 256")
        )


def test_a_weak_key_is_read_from_a_live_handshake_too(tmp_path, pki):
    weak = pki.inter.issue("old.example.test", dns=("old.example.test",), key=rsa_key(1024))
    result = served(tmp_path, [weak, pki.inter], server_name="old.example.test")
    assert result.status is Status.warning
    assert result.metrics["key_bits"] == 1024


def openssl(arguments: str, cwd: Path) -> None:
    """``openssl`` run in ``cwd``, its arguments split on whitespace (a list, never a shell)."""
    subprocess.run(["openssl", *arguments.split()], cwd=cwd, check=True, capture_output=True, timeout=30)


def test_a_sha1_signature_below_the_root_is_critical_unless_allowed(tmp_path):
    """cryptography refuses to sign with SHA-1, so openssl makes this chain (dated by the real clock)."""
    new_key = "-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes"
    openssl(f"req -x509 -sha1 {new_key} -keyout ca.key -out ca.pem -days 800 -subj /CN=old", tmp_path)
    openssl(f"req {new_key} -keyout l.key -out l.csr -subj /CN=old.example.test", tmp_path)
    openssl(
        "x509 -req -sha1 -in l.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out l.pem -days 400", tmp_path
    )
    leaf, ca = tmp_path / "l.pem", tmp_path / "ca.pem"
    chain = tmp_path / "chain.pem"
    chain.write_bytes(leaf.read_bytes() + ca.read_bytes())
    issued = x509.load_pem_x509_certificate(leaf.read_bytes()).not_valid_before_utc
    clock = FakeClock(issued + DAY)
    result = from_files(chain, clock=clock)
    assert result.status is Status.critical
    assert headline(result).startswith(
        "CN=old.example.test is signed with SHA-1; CN=old.example.test expires"
    )
    assert "CN=old is signed" not in result.output  # a root's own signature is never checked by clients
    assert "SHA-1 signature" in result.output
    assert from_files(chain, clock=clock, allow_weak_signatures=True).status is Status.ok


def test_verification_follows_the_chain_to_the_given_ca(tmp_path, pki):
    ca_file = str(write_pem(tmp_path / "ca.pem", pki.ca))
    verified = served(tmp_path, [pki.leaf, pki.inter], verify=True, ca_file=ca_file)
    assert verified.status is Status.ok, verified.output
    missing = served(tmp_path, [pki.leaf], verify=True, ca_file=ca_file)
    assert missing.status is Status.critical
    assert headline(missing).startswith(
        f"chain does not verify against ca_file {ca_file}: no path from the leaf to a trusted root"
    )


def test_verification_happens_at_the_clocks_time(tmp_path, pki):
    short = pki.ca.issue("short-lived intermediate", ca=True, not_after=T0 + 20 * DAY)
    leaf = short.issue("www.example.test", dns=("www.example.test",))
    ca_file = str(write_pem(tmp_path / "ca.pem", pki.ca))
    path = write_pem(tmp_path / "chain.pem", leaf, short)
    assert from_files(path, verify=True, ca_file=ca_file).status is Status.warning
    later = from_files(path, verify=True, ca_file=ca_file, clock=FakeClock(T0 + 21 * DAY))
    assert later.status is Status.critical
    assert "chain does not verify against" in later.output
    assert "CN=short-lived intermediate expired 1.0 days ago" in later.output


def test_a_private_ca_does_not_verify_against_the_system_bundle(tmp_path, pki):
    result = served(tmp_path, [pki.leaf, pki.inter], verify=True)
    assert result.status is Status.critical
    assert "chain does not verify against the system CA bundle" in result.output


def test_an_unusable_ca_file_is_unknown(tmp_path, pki):
    (tmp_path / "bogus.pem").write_text("not a bundle")
    result = from_files(
        write_pem(tmp_path / "c.pem", pki.leaf), verify=True, ca_file=str(tmp_path / "bogus.pem")
    )
    assert result.status is Status.unknown
    assert result.output.startswith(f"no certificates in ca_file {tmp_path / 'bogus.pem'}")


def test_smtp_starttls_presents_the_chain(tmp_path, pki):
    async def go() -> CheckResult:
        async with smtp_server(tmp_path, [pki.leaf, pki.inter]) as port:
            return await run_kind("tls", {"host": "127.0.0.1", "port": port, "starttls": "smtp"})

    result = run(go())
    assert result.status is Status.ok, result.output
    assert result.output.startswith("127.0.0.1:") and " (smtp STARTTLS): CN=www.example.test" in result.output
    assert result.metrics["chain_length"] == 2


@pytest.fixture(scope="module")
def postgres_port(pki: Pki) -> Iterator[int]:
    with postgres_with_tls([pki.leaf, pki.inter]) as port:
        yield port


def test_postgres_ssl_request_reaches_the_clusters_certificate(postgres_port):
    result = run(run_kind("tls", {"host": "127.0.0.1", "port": postgres_port, "starttls": "postgres"}))
    assert result.status is Status.ok, result.output
    assert headline(result) == FAR
    assert result.metrics["chain_length"] == 2


async def http_banner(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.write(b"HTTP/1.1 400 Bad Request\r\n\r\n")
    await writer.drain()
    await reader.read()
    writer.close()


async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await reader.read()
    writer.close()


@pytest.mark.parametrize(
    ("handler", "params", "problem"),
    [
        (
            http_banner,
            {},
            "TLS handshake failed: TLS error: [SSL: WRONG_VERSION_NUMBER] wrong version number",
        ),
        (silent, {}, "timed out after 0.3s during the TLS handshake"),
        (silent, {"starttls": "smtp"}, "timed out after 0.3s during the SMTP dialogue"),
        (http_banner, {"starttls": "smtp"}, "not an SMTP server: 'HTTP/1.1 400 Bad Request'"),
        (
            refuses_ssl,
            {"starttls": "postgres"},
            "the PostgreSQL server does not accept SSL (it answered N to the SSLRequest)",
        ),
        (
            http_banner,
            {"starttls": "postgres"},
            "not a PostgreSQL server: it answered b'H' to the SSLRequest",
        ),
    ],
    ids=[
        "plain-text",
        "no-handshake",
        "smtp-silent",
        "smtp-not-smtp",
        "postgres-ssl-off",
        "postgres-not-postgres",
    ],
)
def test_an_endpoint_that_presents_no_chain_is_critical_with_the_step_and_reason(handler, params, problem):
    async def go() -> CheckResult:
        async with serve(handler) as port:
            return await run_kind("tls", {"host": "127.0.0.1", "port": port, "timeout": "300ms", **params})

    result = run(go())
    assert result.status is Status.critical
    assert headline(result) == problem


def test_an_smtp_server_without_starttls_is_critical(tmp_path):
    async def go() -> CheckResult:
        async with smtp_server(tmp_path, None) as port:
            return await run_kind("tls", {"host": "127.0.0.1", "port": port, "starttls": "smtp"})

    result = run(go())
    assert result.status is Status.critical
    assert headline(result) == "the SMTP server does not offer STARTTLS"


def test_a_refused_connection_is_critical():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        result = run(run_kind("tls", {"host": "127.0.0.1", "port": port}))
    assert result.status is Status.critical
    assert result.output == f"127.0.0.1:{port}: connect failed: Connection refused"


def test_the_endpoint_defaults_to_the_targets_connection(tmp_path, pki):
    async def go() -> list[CheckResult]:
        async with tls_server(tmp_path, [pki.leaf, pki.inter]) as port:
            targets = [
                make_target(connection={"host": "127.0.0.1", "port": port}),
                make_target(kind="api", connection={"url": f"https://127.0.0.1:{port}/health"}),
            ]
            return [await run_kind("tls", {}, target) for target in targets]

    assert [r.status for r in run(go())] == [Status.ok, Status.ok]


def test_no_endpoint_and_no_files_is_unknown():
    result = run(run_kind("tls", {}, Target.model_validate({"name": "t1", "kind": "certificate"})))
    assert result.status is Status.unknown
    assert (
        result.output
        == "no host: set params.host or the target's connection.host, or params.files (target t1)"
    )


def test_a_directory_is_checked_file_by_file_and_the_worst_is_reported(tmp_path, pki):
    certs = tmp_path / "certs"
    certs.mkdir()
    soon = pki.inter.issue("soon.example.test", not_after=T0 + 5 * DAY)
    write_pem(certs / "www.pem", pki.leaf, pki.inter)
    write_pem(certs / "soon.crt", soon)
    (certs / "soon.key").write_bytes(soon.key_pem())  # not a certificate file: ignored
    (certs / "www-key.pem").write_bytes(pki.leaf.key_pem())  # a PEM without certificates: skipped
    (certs / "notes.txt").write_text("ignored")
    result = run(run_kind("tls", {"directory": str(certs)}))
    assert result.status is Status.critical
    assert result.output.splitlines()[0] == (
        f"{certs} (2 certificate files): {certs / 'soon.crt'}: CN=soon.example.test expires in 5.0 days"
        " on 2026-12-02 01:00 UTC (critical below 7 days)"
    )
    assert result.metrics == {"days_left": 5.0, "chain_length": 3.0, "key_bits": 256.0}


def test_a_missing_file_is_critical_with_the_reason(tmp_path):
    path = tmp_path / "missing.pem"
    result = from_files(path)
    assert result.status is Status.critical
    assert result.output == f"{path}: No such file or directory"


def test_a_file_without_a_certificate_is_critical(tmp_path, pki):
    junk = tmp_path / "junk.pem"
    junk.write_text("-----BEGIN CERTIFICATE-----\nnot base64\n")
    result = from_files(junk, write_pem(tmp_path / "good.pem", pki.leaf))
    assert result.status is Status.critical
    assert headline(result).startswith(f"{junk}: no certificate in it (")
    assert result.metrics["chain_length"] == 1


@pytest.mark.parametrize("make", [lambda d: d / "absent", lambda d: d], ids=["missing", "empty"])
def test_a_directory_without_certificates_is_critical(tmp_path, make):
    directory = make(tmp_path)
    result = run(run_kind("tls", {"directory": str(directory)}))
    assert result.status is Status.critical
    assert str(directory) in result.output


def test_python_without_a_chain_api_falls_back_to_the_leaf():
    class LeafOnly:  # what ssl.SSLObject offers when neither chain API exists
        def getpeercert(self, binary_form: bool = False) -> bytes:
            return b"leaf-der"

    assert presented_chain(LeafOnly()) == ([b"leaf-der"], False)


@pytest.mark.parametrize(
    "bad",
    [
        {"files": ["/x.pem"], "host": "example.test"},
        {"directory": "/etc/ssl", "starttls": "smtp"},
        {"warn_days": 5, "crit_days": 10},
        {"ca_file": "/ca.pem"},
        {"starttls": "imap"},
        {"timeout": 0},
        {"check_names": False},
    ],
)
def test_bad_params_are_rejected_by_the_kinds_model(bad):
    with pytest.raises(ValidationError):
        REGISTRY.get("tls").config.model_validate(bad)
