"""Files and directories against the desired state (blocking I/O: called in a worker thread)."""

from __future__ import annotations

import fnmatch
import grp
import hashlib
import os
import pwd
import stat
from pathlib import Path

from maintd.tasks.drift import DirectorySpec, FileSpec
from maintd.tasks.drift.items import Item, decoded, hash_diff, sha256, text_diff

DIFF_BYTES = 1 << 20  # larger files are compared by hash only
_CHUNK = 1 << 20


class Broken(Exception):
    """The desired state cannot be read: the item gets no verdict, and this message."""


def desired_path(desired: Path, relative: str) -> Path:
    """``relative`` inside ``desired``; never outside it (no ``..`` or absolute escapes)."""
    path = (desired / relative).resolve()
    if not path.is_relative_to(desired.resolve()):
        raise Broken(f"desired {relative} is outside the desired directory {desired}")
    return path


def actual_path(root: str, path: str) -> Path:
    return Path(path) if os.path.isabs(path) else Path(root) / path


def compare_file(spec: FileSpec, desired: Path, root: str) -> Item:
    where = actual_path(root, spec.path)
    item = Item("file", str(where))
    try:
        expected = _expected(spec, desired)
    except Broken as exc:
        item.failed(str(exc))
        return item
    try:
        st = os.stat(where)
    except FileNotFoundError:
        item.drifted("missing")
        if expected is not None:
            label = f"desired/{spec.content}" if spec.content else "desired sha256"
            text = decoded(expected) if isinstance(expected, bytes) and not spec.sensitive else None
            if text is not None:
                item.diff = text_diff(text, "", label, str(where))
            else:
                want = sha256(expected) if isinstance(expected, bytes) else expected
                item.diff = hash_diff(want, None, label, str(where))
        return item
    except OSError as exc:
        item.failed(f"cannot stat: {_reason(exc)}")
        return item
    if not stat.S_ISREG(st.st_mode):
        item.drifted(f"not a regular file ({_type(st.st_mode)})")
        return item
    _attributes(spec, st, item)
    if expected is not None:
        _content(spec, expected, where, st.st_size, item)
    return item


def _expected(spec: FileSpec, desired: Path) -> bytes | str | None:
    """The desired content (bytes), or its sha256 (str), or None when only attributes are compared."""
    if spec.sha256:
        return spec.sha256
    if not spec.content:
        return None
    path = desired_path(desired, spec.content)
    try:
        with open(path, "rb") as f:
            return f.read()
    except FileNotFoundError:
        raise Broken(f"desired file {path}: no such file") from None
    except OSError as exc:
        raise Broken(f"desired file {path}: {_reason(exc)}") from None


def _content(spec: FileSpec, expected: bytes | str, where: Path, size: int, item: Item) -> None:
    want_hash = expected if isinstance(expected, str) else sha256(expected)
    label = f"desired/{spec.content}" if spec.content else "desired sha256"
    try:
        if isinstance(expected, bytes) and size <= DIFF_BYTES and not spec.sensitive:
            data = where.read_bytes()
            got_hash, text = sha256(data), decoded(data)
        else:
            got_hash, text = _hash_file(where), None
    except OSError as exc:
        item.failed(f"cannot read: {_reason(exc)}")
        return
    if got_hash == want_hash:
        return
    item.drifted("content differs")
    want_text = decoded(expected) if isinstance(expected, bytes) else None
    if text is not None and want_text is not None:
        item.diff = text_diff(want_text, text, label, str(where))
    else:
        item.diff = hash_diff(want_hash, got_hash, label, str(where))


def _reason(exc: OSError) -> str:
    return (exc.strerror or str(exc)).lower()


def _hash_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _attributes(spec: FileSpec, st: os.stat_result, item: Item) -> None:
    if spec.mode is not None:
        want, got = int(spec.mode, 8), stat.S_IMODE(st.st_mode)
        if want != got:
            item.drifted(f"mode {got:04o}, expected {want:04o}")
    if spec.owner is not None:
        got_name = _user(st.st_uid)
        if spec.owner not in (got_name, str(st.st_uid)):
            item.drifted(f"owner {got_name}, expected {spec.owner}")
    if spec.group is not None:
        got_group = _group(st.st_gid)
        if spec.group not in (got_group, str(st.st_gid)):
            item.drifted(f"group {got_group}, expected {spec.group}")


def _user(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def _group(gid: int) -> str:
    try:
        return grp.getgrgid(gid).gr_name
    except KeyError:
        return str(gid)


def _type(mode: int) -> str:
    for test, name in (
        (stat.S_ISDIR, "a directory"),
        (stat.S_ISLNK, "a symlink"),
        (stat.S_ISFIFO, "a fifo"),
        (stat.S_ISSOCK, "a socket"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
    ):
        if test(mode):
            return name
    return "not a file"


def compare_directory(spec: DirectorySpec, desired: Path, root: str) -> Item:
    where = actual_path(root, spec.path)
    item = Item("directory", str(where))
    if spec.like is not None:
        try:
            source = desired_path(desired, spec.like)
            expected = {entry.name for entry in os.scandir(source)}
        except Broken as exc:
            item.failed(str(exc))
            return item
        except OSError as exc:
            item.failed(f"desired directory {source}: {_why(exc)}")
            return item
        label = f"desired/{spec.like}"
    else:
        expected, label = set(spec.entries or []), "desired entries"
    try:
        actual = {entry.name for entry in os.scandir(where)}
    except FileNotFoundError:
        item.drifted("missing")
        return item
    except NotADirectoryError:
        item.drifted("not a directory")
        return item
    except OSError as exc:
        item.failed(f"cannot list: {_why(exc)}")
        return item
    expected = {n for n in expected if not _ignored(n, spec.ignore)}
    actual = {n for n in actual if not _ignored(n, spec.ignore)}
    if expected == actual:
        return item
    missing, extra = sorted(expected - actual), sorted(actual - expected)
    if missing:
        item.drifted(f"{len(missing)} missing: {_some(missing)}")
    if extra:
        item.drifted(f"{len(extra)} unexpected: {_some(extra)}")
    item.diff = text_diff(_lines(expected), _lines(actual), label, str(where))
    return item


def _why(exc: OSError) -> str:
    if isinstance(exc, FileNotFoundError):
        return "no such directory"
    return (exc.strerror or str(exc)).lower()


def _some(names: list[str], limit: int = 10) -> str:
    return ", ".join(names[:limit]) + (" ..." if len(names) > limit else "")


def _lines(names: set[str]) -> str:
    return "".join(f"{n}\n" for n in sorted(names))


def _ignored(name: str, patterns: list[str]) -> bool:
    return any(fnmatch.fnmatchcase(name, p) for p in patterns)
