"""Compress a rotated log, prove the archive holds every byte of it, and only then remove it.

``frames`` cuts the log into 2 MiB segments and compresses them on a pool of threads; each
frame is decompressed and compared with the segment it came from before it is handed back.
Here the proved frames are written in order under a temporary name, each checked to begin
where the one before it ended, and the file is fsynced; its size must be the sum of the frames
and the name must still be the file written (no read-back: docs/kinds/logs.md says why). It is
renamed into place; the original is removed only after that, and only if it did not change
while it was read.

An archive found already in place beside its original (a run stopped between the rename and
the removal) is checked by decompressing it and comparing it with the original byte for byte.
"""

from __future__ import annotations

import contextlib
import os
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from maintd.tasks.logs.config import Codec
from maintd.tasks.logs.frames import FrameError, frames

READ = 1 << 20
FLUSH = 16 << 20  # of archive written: sent to the disk while compression goes on
VERIFIED = "every frame decompressed and compared in memory before it was written"


class ArchiveError(Exception):
    """The archive cannot be trusted (or made); the original is kept. The message says why."""


@dataclass(frozen=True)
class Archived:
    bytes_before: int
    bytes_after: int
    how: str  # how it was verified


def compress(src: Path, dest: Path, *, codec: Codec, level: int, threads: int) -> Archived:
    """Write ``dest`` from ``src`` and verify it; remove ``src``. Raises ArchiveError, keeping ``src``."""
    tmp = dest.with_name(f".{dest.name}.partial")
    _remove_quietly(tmp)  # left by a run that was killed half-way: only ever ours
    try:
        fd = os.open(src, os.O_RDONLY)
    except OSError as exc:
        raise ArchiveError(f"cannot read {src}: {exc.strerror}") from None
    try:
        before = os.fstat(fd)
        written, identity = _write_frames(
            fd, before.st_size, tmp, codec, level, threads or os.cpu_count() or 1
        )
        if _identity(os.stat(tmp)) != identity:
            raise ArchiveError(f"{tmp} was replaced while it was written; {src} kept")
        after = os.fstat(fd)
        if (after.st_size, after.st_mtime_ns) != (before.st_size, before.st_mtime_ns):
            raise ArchiveError(f"{src} changed while it was compressed; it is still being written")
        os.chmod(tmp, before.st_mode & 0o7777)
        os.utime(tmp, ns=(before.st_atime_ns, before.st_mtime_ns))  # the archive ages with its log
        os.rename(tmp, dest)
        _fsync_dir(dest.parent)
    except BaseException:
        _remove_quietly(tmp)
        raise
    finally:
        os.close(fd)
    _remove(src)
    return Archived(before.st_size, written, VERIFIED)


def adopt(src: Path, dest: Path, codec: Codec) -> Archived:
    """``dest`` already exists: keep it if it decompresses to exactly ``src``; then remove ``src``."""
    size = src.stat().st_size
    with src.open("rb") as original:
        offset = 0
        try:
            for chunk in decoded(dest, codec):
                if original.read(len(chunk)) != chunk:
                    end = offset + len(chunk)
                    raise ArchiveError(f"{dest} differs from {src} within bytes {offset}-{end}; {src} kept")
                offset += len(chunk)
        except ValueError as exc:
            raise ArchiveError(f"{dest} is corrupt ({exc}); {src} kept") from None
        except OSError as exc:
            raise ArchiveError(f"cannot read {dest}: {exc.strerror}; {src} kept") from None
        if offset != size:
            raise ArchiveError(f"{dest} holds {offset} bytes, {src} has {size}")
    _remove(src)
    return Archived(size, dest.stat().st_size, "existing archive decompressed and compared byte for byte")


def decoded(path: Path, codec: Codec) -> Iterator[bytes]:
    """The decompressed content of an archive of any number of frames/members, in pieces.

    Raises ValueError for a corrupt or cut-short archive (checksums are checked as it goes).
    """
    start = _decoder(codec)
    with path.open("rb") as fh:
        inflate, partial = start(), False
        while data := fh.read(READ):
            while data:
                try:
                    yield inflate.decompress(data)
                except Exception as exc:  # zlib.error, zstandard.ZstdError: the decoders' own types
                    raise ValueError(str(exc)) from None
                partial = not inflate.eof
                data = inflate.unused_data if inflate.eof else b""
                if inflate.eof:
                    inflate = start()
    if partial:
        raise ValueError("it ends in the middle of a frame (cut short)")


def _decoder(codec: Codec) -> Callable[[], Any]:
    if codec is Codec.gzip:
        return lambda: zlib.decompressobj(31)
    import zstandard  # a C extension: loaded when a run compresses, not when the kind registers

    dctx = zstandard.ZstdDecompressor()
    return dctx.decompressobj


def _write_frames(
    fd: int, size: int, tmp: Path, codec: Codec, level: int, threads: int
) -> tuple[int, tuple[int, int]]:
    """Write the proved frames of ``fd`` into a new ``tmp`` and fsync it; bytes written, and its identity."""
    out = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    try:
        held = written = flushed = 0
        with contextlib.closing(frames(fd, size, codec, level, threads)) as proved:
            for frame in proved:
                if frame.offset != held:  # the frames must tile the log: none missing, none twice
                    raise ArchiveError(
                        f"the frame for byte {frame.offset} came where byte {held} belongs; nothing removed"
                    )
                _write_all(out, frame.data)
                held, written = held + frame.length, written + len(frame.data)
                if written - flushed >= FLUSH:
                    os.fdatasync(out)  # the workers keep compressing meanwhile; the last fsync waits less
                    flushed = written
        if held != size:
            raise ArchiveError(f"the frames hold {held} bytes of {size}; nothing removed")
        os.fsync(out)  # an I/O error on the way to the disk is raised here
        done = os.fstat(out)
        if done.st_size != written:
            raise ArchiveError(f"{tmp} holds {done.st_size} bytes after fsync, {written} were written")
        return written, _identity(done)
    except FrameError as exc:
        raise ArchiveError(f"{exc}; nothing removed") from None
    except OSError as exc:
        raise ArchiveError(f"cannot write {tmp}: {exc.strerror}") from None
    finally:
        os.close(out)


def _write_all(out: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(out, view) :]


def _identity(st: os.stat_result) -> tuple[int, int]:
    return st.st_dev, st.st_ino


def _remove(path: Path) -> None:
    try:
        os.unlink(path)
    except OSError as exc:
        raise ArchiveError(f"archived, but cannot remove {path}: {exc.strerror}") from None
    _fsync_dir(path.parent)


def _remove_quietly(path: Path) -> None:
    with contextlib.suppress(OSError):
        os.unlink(path)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
