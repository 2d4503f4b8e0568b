"""Get a new certificate from an ACME server with the ``acme`` library (http-01).

Blocking (the library uses requests and polls with time.sleep): run it in a worker
thread. Every failure is an AcmeError whose message says at which step and why.
"""

from __future__ import annotations

import contextlib
import datetime
import ipaddress
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests
from acme import challenges, client, crypto_util, errors, messages, standalone
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from josepy.errors import Error as JoseError
from josepy.jwa import ES256, ES384, RS256, JWASignature
from josepy.jwk import JWK, JWKEC, JWKRSA

from maintd.tasks.certificates import KeyType

_CURVES: dict[str, ec.EllipticCurve] = {"ec-p256": ec.SECP256R1(), "ec-p384": ec.SECP384R1()}


class AcmeError(Exception):
    """The renewal did not produce a certificate; nothing was written but, maybe, the account key."""

    account_created = False  # set when this attempt created the account key before failing


@dataclass(frozen=True)
class Request:
    directory: str
    account_key: Path
    contact: list[str]
    ca_bundle: str | None
    challenge: str  # webroot | standalone
    webroot: Path | None
    listen: tuple[str, int]
    key_type: KeyType
    domains: list[str]
    network_timeout: float
    seconds: float  # the whole issuance, polling included


@dataclass(frozen=True)
class Issued:
    fullchain_pem: bytes
    key_pem: bytes
    account_created: bool


def issue(req: Request) -> Issued:
    if req.ca_bundle:
        try:  # requests would raise a bare OSError about "a suitable TLS CA certificate bundle"
            Path(req.ca_bundle).open("rb").close()
        except OSError as exc:
            raise AcmeError(f"cannot read ca_bundle {req.ca_bundle}: {exc.strerror or exc}") from None
    net = client.ClientNetwork(
        None,
        # Annotated bool, but handed to requests' verify=, which takes a CA bundle path too.
        verify_ssl=req.ca_bundle or True,  # type: ignore[arg-type]
        user_agent="maintd",
        timeout=max(1, round(req.network_timeout)),
    )
    directory = _step(req, "reading the directory", client.ClientV2.get_directory, req.directory, net)
    acme = client.ClientV2(directory, net)
    # Only once the server answered: a run against a server that is down creates nothing.
    account, created = _account_key(req.account_key)
    net.key, net.alg = account, _algorithm(account)
    try:
        return _order(req, acme, account, created)
    except AcmeError as exc:
        exc.account_created = created
        raise


def _order(req: Request, acme: client.ClientV2, account: JWK, created: bool) -> Issued:
    registration = messages.NewRegistration.from_data(
        email=",".join(req.contact) or None, terms_of_service_agreed=True
    )
    try:
        _step(req, "registering the account", acme.new_account, registration)
    except _Existing as known:
        acme.net.account = messages.RegistrationResource(uri=known.location, body=messages.Registration())
    key_pem = _new_key(req.key_type)
    dns = [d for d in req.domains if not _is_ip(d)]
    ips = [ipaddress.ip_address(d) for d in req.domains if _is_ip(d)]
    csr = _step(req, "making the request", crypto_util.make_csr, key_pem, dns, False, ips)
    order = _step(req, "creating the order", acme.new_order, csr)
    # The library compares its deadline with a naive datetime.now(): local time, not the clock's.
    deadline = datetime.datetime.now() + datetime.timedelta(seconds=req.seconds)
    with _challenges(req, acme, order, account):
        done = _step(req, "validating and finalizing the order", acme.poll_and_finalize, order, deadline)
    return Issued(done.fullchain_pem.encode(), key_pem, created)


class _Existing(Exception):
    def __init__(self, location: str) -> None:
        self.location = location


def _step(req: Request, what: str, call: Any, *args: Any) -> Any:
    try:
        return call(*args)
    except errors.ConflictError as exc:
        raise _Existing(exc.location) from None
    except requests.exceptions.SSLError as exc:
        raise AcmeError(f"ACME server {req.directory}: TLS error while {what}: {_cause(exc)}") from None
    except requests.exceptions.Timeout:
        raise AcmeError(f"ACME server {req.directory}: timed out while {what}") from None
    except requests.exceptions.ConnectionError as exc:
        raise AcmeError(f"ACME server {req.directory}: cannot connect while {what}: {_cause(exc)}") from None
    except requests.exceptions.RequestException as exc:
        raise AcmeError(f"ACME server {req.directory}: {what} failed: {exc}") from None
    except errors.ValidationError as exc:
        raise AcmeError(f"ACME server {req.directory}: challenge failed: {_validation(exc)}") from None
    except errors.TimeoutError:
        raise AcmeError(
            f"ACME server {req.directory}: timed out after {req.seconds:.0f}s while {what}"
        ) from None
    except (errors.Error, messages.Error, JoseError, ValueError) as exc:
        raise AcmeError(f"ACME server {req.directory}: {what} failed: {_one_line(exc)}") from None


def _cause(exc: BaseException) -> str:
    """The innermost reason (errno text) under requests' and urllib3's wrappers."""
    seen: set[int] = set()
    todo: list[BaseException] = [exc]
    while todo:
        current = todo.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, OSError) and current.errno:
            return os.strerror(current.errno)
        reason = getattr(current, "reason", None)
        todo += [
            e
            for e in (reason, current.__cause__, current.__context__, *current.args)
            if isinstance(e, BaseException)
        ]
    return _one_line(exc)


def _validation(exc: errors.ValidationError) -> str:
    problems = []
    for authz in exc.failed_authzrs:
        for chall in authz.body.challenges:
            if chall.error is not None:
                problems.append(f"{authz.body.identifier.value}: {chall.error.detail or chall.error.typ}")
    return "; ".join(problems) or "validation failed"


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


@contextlib.contextmanager
def _challenges(
    req: Request, acme: client.ClientV2, order: messages.OrderResource, account: JWK
) -> Iterator[None]:
    """Provision every pending http-01 challenge, answer them, and clean up afterwards."""
    pending = []
    for authz in order.authorizations:
        if authz.body.status == messages.STATUS_VALID:
            continue  # the server still remembers this name as validated
        http01 = [c for c in authz.body.challenges if isinstance(c.chall, challenges.HTTP01)]
        if not http01:
            raise AcmeError(
                f"ACME server {req.directory}: no http-01 challenge offered for {authz.body.identifier.value}"
            )
        pending.append(http01[0])
    with contextlib.ExitStack() as stack:
        if req.challenge == "webroot":
            stack.enter_context(_webroot(req, pending, account))
        else:
            stack.enter_context(_standalone(req, pending, account))
        for chall in pending:
            _step(req, "answering the challenge", acme.answer_challenge, chall, chall.response(account))
        yield


@contextlib.contextmanager
def _webroot(req: Request, pending: list[messages.ChallengeBody], account: JWK) -> Iterator[None]:
    assert req.webroot is not None
    written: list[Path] = []
    try:
        for chall in pending:
            _response, validation = chall.response_and_validation(account)
            path = req.webroot / chall.chall.path.lstrip("/")
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(validation)
            except OSError as exc:
                raise AcmeError(f"cannot write the http-01 token {path}: {exc.strerror or exc}") from None
            written.append(path)
        yield
    finally:
        for path in written:  # only the tokens this renewal wrote
            with contextlib.suppress(OSError):
                path.unlink()


@contextlib.contextmanager
def _standalone(req: Request, pending: list[messages.ChallengeBody], account: JWK) -> Iterator[None]:
    resources = set()
    for chall in pending:
        response, validation = chall.response_and_validation(account)
        resources.add(standalone.HTTP01RequestHandler.HTTP01Resource(chall.chall, response, validation))
    host, port = req.listen
    try:
        servers = standalone.HTTP01DualNetworkedServers((host, port), resources)
    except OSError as exc:
        raise AcmeError(f"cannot listen on {host}:{port} for http-01: {exc.strerror or exc}") from None
    servers.serve_forever()
    try:
        yield
    finally:
        servers.shutdown_and_server_close()


def _account_key(path: Path) -> tuple[JWK, bool]:
    """The account key, created (EC P-256, mode 0600) when the file does not exist."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return _create_account_key(path), True
    except OSError as exc:
        raise AcmeError(f"cannot read the account key {path}: {exc.strerror or exc}") from None
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise AcmeError(f"account key {path}: not an unencrypted PEM private key ({exc})") from None
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return JWKEC(key=key), False
    if isinstance(key, rsa.RSAPrivateKey):
        return JWKRSA(key=key), False
    raise AcmeError(f"account key {path}: an EC or RSA key is needed, not {type(key).__name__}")


def _create_account_key(path: Path) -> JWK:
    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    try:
        # A first renewal may name a directory nobody made yet (certbot makes its accounts/ too).
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        # O_EXCL: never overwrite a key another run created meanwhile.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError as exc:
        raise AcmeError(f"cannot create the account key {path}: {exc.strerror or exc}") from None
    with os.fdopen(fd, "wb") as handle:
        handle.write(pem)
        handle.flush()
        os.fsync(handle.fileno())
    return JWKEC(key=key)


def _algorithm(key: JWK) -> JWASignature:
    if isinstance(key, JWKEC):  # josepy wraps the key: ask the wrapper's curve, not isinstance
        return ES384 if key.key.curve.name == "secp384r1" else ES256
    return RS256


def _new_key(key_type: KeyType) -> bytes:
    key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
    if key_type in _CURVES:
        key = ec.generate_private_key(_CURVES[key_type])
    else:
        key = rsa.generate_private_key(public_exponent=65537, key_size=int(key_type.split("-")[1]))
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True
