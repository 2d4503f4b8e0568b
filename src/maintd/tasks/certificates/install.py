"""Put a renewed certificate in place without ever leaving a broken one there.

New files are written beside the old ones (``.NAME.maintd-new``), read back and checked
(the chain links up, the key matches the leaf, the names are covered, optionally the chain
verifies against trusted roots); only then is each old file hard-linked to ``NAME.previous``
and the new one renamed over it. Any failure before the renames removes only the new files.
"""

from __future__ import annotations

import contextlib
import itertools
import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization

from maintd.checks.base import Change
from maintd.checks.tls.certs import covers, parse_certificates, verify_chain


class InstallError(Exception):
    """The new certificate was not installed; the files in place are unchanged."""


@dataclass(frozen=True)
class Destination:
    cert: Path | None
    chain: Path | None
    fullchain: Path | None
    key: Path


def check(
    fullchain_pem: bytes,
    key_pem: bytes,
    domains: list[str],
    now: datetime,
    trust: tuple[list[x509.Certificate], str] | None,
) -> list[x509.Certificate]:
    """The new chain, leaf first, when it is fit to replace the old one; InstallError says why not."""
    try:
        chain = parse_certificates(fullchain_pem)
    except ValueError as exc:
        raise InstallError(f"the ACME server sent no readable certificate ({exc})") from None
    leaf = chain[0]
    try:
        key = serialization.load_pem_private_key(key_pem, password=None)
    except (ValueError, TypeError) as exc:
        raise InstallError(f"the new private key is unreadable ({exc})") from None
    public = serialization.PublicFormat.SubjectPublicKeyInfo
    if key.public_key().public_bytes(serialization.Encoding.DER, public) != leaf.public_key().public_bytes(
        serialization.Encoding.DER, public
    ):
        raise InstallError("the new certificate does not match the new private key")
    for child, parent in itertools.pairwise(chain):
        try:
            child.verify_directly_issued_by(parent)
        except (ValueError, TypeError, InvalidSignature):
            raise InstallError(
                f"the new chain is broken: {_who(child)} is not signed by {_who(parent)}"
            ) from None
    missing = [name for name in domains if not covers(leaf, name)]
    if missing:
        raise InstallError(f"the new certificate does not cover {', '.join(missing)}")
    if leaf.not_valid_after_utc <= now:
        raise InstallError(f"the new certificate expired on {leaf.not_valid_after_utc:%Y-%m-%d %H:%M} UTC")
    if trust is not None:
        # The CA's clock may run a little ahead of ours: judge the path from the leaf's start at the earliest.
        problem = verify_chain(chain, trust[0], max(now, leaf.not_valid_before_utc))
        if problem:
            raise InstallError(f"the new chain does not verify against {trust[1]}: {problem}")
    return chain


def install(
    dest: Destination,
    chain: list[x509.Certificate],
    key_pem: bytes,
    recheck: Callable[[bytes, bytes], object],
) -> list[Change]:
    """Write beside, read back and ``recheck(fullchain, key)`` as read, then rename into place."""
    files = _contents(chain, key_pem, dest)
    staged: list[Path] = []
    try:
        for path, data, mode in files:
            staged.append(_stage(path, data, mode))
        written = {path: tmp.read_bytes() for (path, _data, _mode), tmp in zip(files, staged, strict=True)}
        if dest.fullchain:
            fullchain = written[dest.fullchain]
        else:
            assert dest.cert is not None
            fullchain = written[dest.cert] + (written[dest.chain] if dest.chain else b"")
        recheck(fullchain, written[dest.key])
        previous = [_keep_previous(path) for path, _data, _mode in files]
    except OSError as exc:
        _discard(staged)
        raise InstallError(f"cannot write {exc.filename or 'the new files'}: {exc.strerror or exc}") from None
    except InstallError as exc:
        _discard(staged)
        raise InstallError(f"{exc} (as written to disk)") from None
    changes = []
    for (path, _data, _mode), tmp, kept in zip(files, staged, previous, strict=True):
        os.replace(tmp, path)  # atomic within the directory: readers see the old file or the new one
        changes.append(Change("write", str(path), {"previous": str(kept)} if kept else {}))
    for directory in {path.parent for path, _data, _mode in files}:
        _fsync_directory(directory)
    return changes


def _contents(
    chain: list[x509.Certificate], key_pem: bytes, dest: Destination
) -> list[tuple[Path, bytes, int]]:
    """What to write where (with the mode of a file that does not exist yet), in rename order.

    The file whose expiry decides the renewal (fullchain, else cert) is renamed last: a run that
    dies half-way leaves it old, so the next run renews and writes every file again.
    """
    pems = [cert.public_bytes(serialization.Encoding.PEM) for cert in chain]
    out: list[tuple[Path, bytes, int]] = [(dest.key, key_pem, 0o600)]
    if dest.chain:
        out.append((dest.chain, b"".join(pems[1:]), 0o644))
    if dest.cert:
        out.append((dest.cert, pems[0], 0o644))
    if dest.fullchain:
        out.append((dest.fullchain, b"".join(pems), 0o644))
    return out


def rename_order(dest: Destination) -> list[Path]:
    """The files a renewal writes, in the order they are renamed into place."""
    return [p for p in (dest.key, dest.chain, dest.cert, dest.fullchain) if p is not None]


def _stage(path: Path, data: bytes, mode: int) -> Path:
    tmp = path.with_name(f".{path.name}.maintd-new")
    try:
        old = path.stat()
    except FileNotFoundError:
        old = None
    if old is not None and mode != 0o600:
        mode = old.st_mode & 0o777
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        os.fchmod(fd, mode)  # O_CREAT's mode does not apply to a leftover from a crashed run
        if old is not None:
            with contextlib.suppress(PermissionError):  # keep the owner a server reads it as (root only)
                os.fchown(fd, old.st_uid, old.st_gid)
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    return tmp


def _keep_previous(path: Path) -> Path | None:
    """Hard-link the file in place to NAME.previous (replacing an older one), so it stays in place too."""
    if not path.exists():
        return None
    previous = path.with_name(path.name + ".previous")
    link = path.with_name(f".{path.name}.maintd-previous")
    with contextlib.suppress(FileNotFoundError):
        link.unlink()
    os.link(path, link)
    os.replace(link, previous)
    return previous


def _discard(staged: list[Path]) -> None:
    for tmp in staged:
        with contextlib.suppress(OSError):
            tmp.unlink()


def _fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _who(cert: x509.Certificate) -> str:
    return cert.subject.rfc4514_string() or "(empty subject)"
