"""File manifests: (path, size, blake3 or sha256) written at backup time and verified later.

A manifest is one JSON document::

    {"format": "maintd-manifest/1", "algo": "blake3", "created_at": "...", "root": "/abs",
     "files": [{"path": "rel/path", "size": 123, "digest": "hex"}, ...]}

Hashing reads each file into a reusable page-aligned buffer (an anonymous mmap): a
misaligned bytearray read ran at a quarter of the cached-file bandwidth here. Files are
hashed by a thread pool; hashlib and blake3 release the GIL while they hash.
"""

from __future__ import annotations

import hashlib
import json
import mmap
import os
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Literal, Protocol

FORMAT = "maintd-manifest/1"
BUFFER = 1 << 20  # 1 MiB: past this, bigger reads bought nothing here

Algo = Literal["blake3", "sha256"]


class ManifestError(Exception):
    """The manifest cannot be read or written; the message names the file and the reason."""


class _Hasher(Protocol):
    def update(self, data: memoryview, /) -> object: ...

    def hexdigest(self) -> str: ...


def _hasher(algo: Algo) -> _Hasher:
    if algo == "sha256":
        return hashlib.sha256()
    import blake3  # the PyPI package: hashlib has no blake3

    # One thread per file already keeps the cores busy; blake3's own threads would contend.
    return blake3.blake3(max_threads=1)


@dataclass(frozen=True)
class Entry:
    path: str  # relative to the manifest's root, with '/' separators
    size: int
    digest: str


@dataclass(frozen=True)
class Manifest:
    algo: Algo
    created_at: datetime
    root: str
    files: list[Entry]

    def as_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "algo": self.algo,
            "created_at": self.created_at.isoformat(),
            "root": self.root,
            "files": [{"path": e.path, "size": e.size, "digest": e.digest} for e in self.files],
        }


@dataclass(frozen=True)
class Hashed:
    """One file's size and digest, or why it could not be read."""

    path: str
    size: int = 0
    digest: str = ""
    error: str = ""  # "No such file or directory", "Permission denied", ...


class _Buffers(threading.local):
    def __init__(self) -> None:
        self.buffer = mmap.mmap(-1, BUFFER)  # page-aligned, reused for every file this thread reads
        self.view = memoryview(self.buffer)


def hash_file(path: str, algo: Algo, buffers: _Buffers) -> Hashed:
    hasher = _hasher(algo)
    size = 0
    try:
        with open(path, "rb", buffering=0) as f:
            while n := f.readinto(buffers.buffer):
                hasher.update(buffers.view[:n])
                size += n
    except OSError as exc:
        return Hashed(path, error=exc.strerror or str(exc))
    return Hashed(path, size, hasher.hexdigest())


def hash_files(paths: list[str], algo: Algo, *, threads: int = 0) -> Iterator[Hashed]:
    """Hash ``paths`` (absolute) on ``threads`` threads (0: one per CPU), in the given order."""
    workers = threads or os.cpu_count() or 1
    buffers = _Buffers()
    with ThreadPoolExecutor(max_workers=min(workers, max(1, len(paths)))) as pool:
        yield from pool.map(lambda p: hash_file(p, algo, buffers), paths)


def walk(root: str, *, skip: Callable[[str], bool] = lambda _p: False) -> list[str]:
    """Every regular file under ``root``, relative, sorted; raises ManifestError for an unreadable root."""
    if not os.path.isdir(root):
        reason = "not a directory" if os.path.exists(root) else "No such file or directory"
        raise ManifestError(f"{root}: {reason}")
    errors: list[OSError] = []
    found = []
    for folder, dirs, files in os.walk(root, onerror=errors.append):
        dirs.sort()
        for name in files:
            full = os.path.join(folder, name)
            if not skip(full) and os.path.isfile(full):
                found.append(os.path.relpath(full, root).replace(os.sep, "/"))
    if errors:
        raise ManifestError(f"{errors[0].filename}: {errors[0].strerror}")
    return sorted(found)


def build(root: str, algo: Algo, now: datetime, *, skip: str | None = None, threads: int = 0) -> Manifest:
    """Hash every file under ``root`` (but ``skip``, the manifest itself); raises ManifestError."""
    root = os.path.abspath(root)
    skipped = os.path.abspath(skip) if skip else None
    names = walk(root, skip=lambda p: p == skipped)
    entries = []
    for name, done in zip(
        names, hash_files([os.path.join(root, n) for n in names], algo, threads=threads), strict=True
    ):
        if done.error:
            raise ManifestError(f"{done.path}: {done.error}")
        entries.append(Entry(name, done.size, done.digest))
    return Manifest(algo, now, root, entries)


def write(manifest: Manifest, output: str) -> None:
    """Write atomically (a temporary file renamed over ``output``); raises ManifestError."""
    tmp = f"{output}.tmp-{os.getpid()}"
    try:
        with open(tmp, "w") as f:
            json.dump(manifest.as_json(), f, indent=1)
            f.write("\n")
        os.replace(tmp, output)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise ManifestError(f"{exc.filename or output}: {exc.strerror or exc}") from None


def read(path: str) -> Manifest:
    """Load and validate a manifest; raises ManifestError naming what is wrong."""
    try:
        with open(path) as f:
            doc = json.load(f)
    except OSError as exc:
        raise ManifestError(f"manifest {path}: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise ManifestError(f"manifest {path}: not JSON ({exc})") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise ManifestError(f"manifest {path}: not a {FORMAT} document")
    try:
        algo = doc["algo"]
        if algo not in ("blake3", "sha256"):
            raise ValueError(f"unknown algo {algo!r}")
        files = [Entry(str(e["path"]), int(e["size"]), str(e["digest"])) for e in doc["files"]]
        return Manifest(algo, datetime.fromisoformat(doc["created_at"]), str(doc["root"]), files)
    except (KeyError, TypeError, ValueError) as exc:
        raise ManifestError(f"manifest {path}: malformed ({exc!s})") from None
