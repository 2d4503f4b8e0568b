"""Rotate a live log: rename it and tell its writer to reopen, or copy it and truncate it.

``rename`` loses nothing: the writer keeps appending to the renamed file through its open
descriptor until the signal makes it reopen the path, and a renamed log is only compressed
once it is ``compress_after`` old (logrotate's ``delaycompress``, in days).

``copytruncate`` is for writers that cannot reopen. logrotate copies the file once and then
truncates it, so every line written during the copy is lost. Here the copy catches up with
the writer until a pass finds nothing new, is fsynced, and only then is the file truncated:
what can still be lost is what the writer appends between that last look and the truncate
(microseconds, not the length of the copy). Linux has no "truncate only if the size is still
N", so that window cannot be closed from outside the writer; use ``rename`` where you can.
"""

from __future__ import annotations

import os
from pathlib import Path

from maintd.tasks.logs.archive import ArchiveError

CHUNK = 1 << 20
MAX_PASSES = 50


def rename(live: Path, dest: Path, *, create: bool, pid: int | None, signal: int) -> str:
    """Rename ``live`` to ``dest``, recreate ``live`` empty, signal ``pid``. What was done, in words."""
    st = live.stat()
    try:
        os.link(live, dest)  # fails if dest appeared since the survey: never overwrite a rotated log
        os.unlink(live)
    except OSError as exc:
        raise ArchiveError(f"cannot rotate {live} to {dest}: {exc.strerror}") from None
    done = f"renamed to {dest.name}"
    if create:
        try:
            fd = os.open(live, os.O_WRONLY | os.O_CREAT | os.O_EXCL, st.st_mode & 0o7777)
        except FileExistsError:
            fd = -1  # the writer made it first
        if fd >= 0:
            try:
                os.fchmod(fd, st.st_mode & 0o7777)
                os.fchown(fd, st.st_uid, st.st_gid)
            finally:
                os.close(fd)
            done += ", new empty log created"
    _fsync_dir(live.parent)
    if pid is not None:
        try:
            os.kill(pid, signal)
        except OSError as exc:
            raise ArchiveError(f"rotated {live}, but cannot signal process {pid}: {exc.strerror}") from None
        done += f", process {pid} signalled"
    return done


def copytruncate(live: Path, dest: Path) -> str:
    """Copy ``live`` to ``dest`` until it stops growing, then truncate ``live``."""
    try:
        src = os.open(live, os.O_RDWR)
    except OSError as exc:
        raise ArchiveError(f"cannot open {live} to copy and truncate it: {exc.strerror}") from None
    try:
        st = os.fstat(src)
        try:
            out = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL, st.st_mode & 0o7777)
        except OSError as exc:
            raise ArchiveError(f"cannot create {dest}: {exc.strerror}") from None
        try:
            copied = passes = 0
            while True:
                passes += 1
                copied += _copy_from(src, out, copied)
                os.fsync(out)
                if os.fstat(src).st_size == copied:
                    # The only window that loses lines: appended after that fstat, before this.
                    os.ftruncate(src, 0)
                    break
                if passes == MAX_PASSES:
                    os.unlink(dest)
                    raise ArchiveError(f"{live} never stopped growing in {passes} copies; left as it was")
        finally:
            os.close(out)
    finally:
        os.close(src)
    _fsync_dir(live.parent)
    return f"copied to {dest.name} ({copied} bytes, {passes} passes) and truncated"


def _copy_from(src: int, out: int, offset: int) -> int:
    total = 0
    while chunk := os.pread(src, CHUNK, offset + total):
        os.write(out, chunk)
        total += len(chunk)
    return total


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
