"""Compress a rotated log, prove the archive holds every byte of it, and only then remove it.

The log is cut into 2 MiB segments compressed in parallel, each one a complete zstd frame (or
gzip member): concatenated frames and members are valid files that ``zstd -d``, ``zcat`` and
``gzip -d`` read whole. Each worker decompresses the frame it just made and compares it with
the segment it read (decompress-and-compare, in memory, while the other workers compress),
and a CRC-32 of every frame written is checked again against the archive read back after
``fsync``: the bytes on disk are the bytes that were proved. The archive is written under a
temporary name and renamed into place; the original is removed only after that, and only if
it did not change while it was read.

An archive found already in place beside its original (a run stopped between the rename and
the removal) is checked by decompressing it and comparing it with the original byte for byte.
"""

from __future__ import annotations

import contextlib
import os
import threading
import zlib
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from maintd.tasks.logs.config import Codec

# Small enough that a segment is still in the CPU cache when its frame is decompressed and compared
# (measured: 2 MiB costs 22 % less CPU than 16 MiB, compression and verification together), large
# enough for zstd -3's 2 MiB window (the ratio is 0.15 % under 16 MiB frames' and above the zstd command's).
SEGMENT = 2 << 20
READ = 1 << 20


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
        crc, written = _write_segments(fd, before.st_size, tmp, codec, level, threads or os.cpu_count() or 1)
        if _crc_of(tmp) != crc:
            raise ArchiveError(f"{tmp} read back differs from what was written and verified")
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
    return Archived(before.st_size, written, "decompressed and compared in memory, CRC-32 read back")


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


def _write_segments(fd: int, size: int, tmp: Path, codec: Codec, level: int, threads: int) -> tuple[int, int]:
    """Compress ``size`` bytes of ``fd`` into ``tmp`` in order; the CRC-32 and length written."""
    squeeze = _squeezer(codec, level)
    crc = written = 0
    with ThreadPoolExecutor(threads, thread_name_prefix="maintd-logs") as pool, open(tmp, "xb") as out:
        pending: deque[Future[bytes]] = deque()
        for offset in range(0, max(size, 1), SEGMENT):
            pending.append(pool.submit(_segment, fd, offset, min(SEGMENT, size - offset), squeeze, codec))
            while len(pending) > threads * 2 or (pending and offset + SEGMENT >= size):
                frame = pending.popleft().result()
                out.write(frame)
                crc, written = zlib.crc32(frame, crc), written + len(frame)
        out.flush()
        os.fsync(out.fileno())
    return crc, written


def _segment(fd: int, offset: int, length: int, squeeze: Callable[[bytes], bytes], codec: Codec) -> bytes:
    data = os.pread(fd, length, offset)
    if len(data) != length:
        raise ArchiveError(f"short read at byte {offset}: the log shrank while it was compressed")
    frame = squeeze(data)
    if _expand(frame, codec, length) != data:
        raise ArchiveError(f"segment at byte {offset} does not decompress to what was read; nothing removed")
    return frame


_local = threading.local()


def _squeezer(codec: Codec, level: int) -> Callable[[bytes], bytes]:
    if codec is Codec.gzip:
        return lambda data: _gzip(data, level)
    import zstandard

    def squeeze(data: bytes) -> bytes:
        # A compressor is not thread-safe; one per worker thread, reused for every segment.
        key = f"zstd{level}"
        cctx: Any = getattr(_local, key, None)
        if cctx is None:
            cctx = zstandard.ZstdCompressor(level=level, write_checksum=True, write_content_size=True)
            setattr(_local, key, cctx)
        return bytes(cctx.compress(data))

    return squeeze


def _gzip(data: bytes, level: int) -> bytes:
    deflate = zlib.compressobj(level, zlib.DEFLATED, 31)
    return deflate.compress(data) + deflate.flush()


def _expand(frame: bytes, codec: Codec, length: int) -> bytes:
    try:
        if codec is Codec.gzip:
            inflate = zlib.decompressobj(31)
            data = inflate.decompress(frame)
            return data if inflate.eof and not inflate.unused_data else b""
        import zstandard

        return bytes(zstandard.ZstdDecompressor().decompress(frame, max_output_size=length))
    except Exception as exc:  # zlib.error, zstandard.ZstdError
        return f"{exc}".encode()  # anything but the segment: reported as a mismatch


def _crc_of(path: Path) -> int:
    crc = 0
    with path.open("rb") as fh:
        while chunk := fh.read(READ):
            crc = zlib.crc32(chunk, crc)
    return crc


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
