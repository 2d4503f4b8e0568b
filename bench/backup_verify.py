"""Benchmark ``backup-verify``: manifest verification MB/s against ``b3sum`` and ``openssl dgst -sha256``.

A 2 GiB backup set (16 files of 128 MiB of random bytes; --quick: 4 of 64 MiB) is made once
under ``$MAINTD_BENCH_BACKUP_DIR`` (default /tmp/maintd-bench-backup) and read once to warm the
page cache. For each algorithm the manifest is written by maintd, then, alternating, 5 times
each: the ``backup-files`` kind verifies the set (the whole run, through the kind's own ``run``;
on every core, and again on one thread), and the peer hashes the same files (``b3sum FILES``:
mmap and all cores; ``openssl dgst -sha256 FILES``: one core). Both must agree on every
digest. The figure is the median wall time's MB/s (10^6 bytes/s); the target: 0.9x the peer's.

    python -m bench --only backup-verify        # or: python -m bench.backup_verify [--quick]
"""

from __future__ import annotations

import asyncio
import os
import shutil
import statistics
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

from bench.common import T0, Result, Shape
from maintd.checks.base import Resources, RunContext, Status
from maintd.clock import FakeClock
from maintd.plan.models import Target, Task
from maintd.tasks.backup_files import KIND, BackupFilesConfig
from maintd.tasks.backup_files import manifest as files

TARGET_RATIO = 0.9
TARGET = f">= {TARGET_RATIO:g}x the peer's MB/s"
REPEATS = 5
PEERS = {"blake3": ["b3sum"], "sha256": ["openssl", "dgst", "-sha256"]}


def run(url: str, store_kind: str, shape: Shape, quick: bool) -> list[Result]:
    count, size = (4, 64 * 2**20) if quick else (16, 128 * 2**20)
    root = Path(os.environ.get("MAINTD_BENCH_BACKUP_DIR", "/tmp/maintd-bench-backup"))
    paths = make_set(root, count, size)
    total = count * size
    return [_one(algo, root, paths, total) for algo in PEERS]


def make_set(root: Path, count: int, size: int) -> list[Path]:
    """The files, made once (kept between runs), then read once so they are in the page cache."""
    root.mkdir(parents=True, exist_ok=True)
    paths = [root / f"part-{i:02d}.bin" for i in range(count)]
    for path in paths:
        if not path.exists() or path.stat().st_size != size:
            with open(path, "wb") as f:
                for _ in range(size // 2**20):
                    f.write(os.urandom(2**20))
    for path in paths:
        with open(path, "rb", buffering=0) as f:
            while f.read(8 * 2**20):
                pass
    return paths


def _one(algo: str, root: Path, paths: list[Path], total: int) -> Result:
    peer = PEERS[algo]
    if shutil.which(peer[0]) is None:
        return Result("backup-verify", "-", algo, "not measured", TARGET, None, f"{peer[0]} is not installed")
    out = root.parent / f"{root.name}.{algo}.manifest.json"
    started = time.perf_counter()
    made = files.build(str(root), algo, T0)  # type: ignore[arg-type]
    write_s = time.perf_counter() - started
    files.write(made, str(out))
    _same_digests(algo, peer, paths, made)
    ours, theirs, one_thread = [], [], []
    for _ in range(REPEATS):
        ours.append(_verify(out))
        theirs.append(_peer(peer, paths))
        one_thread.append(_verify(out, threads=1))
    mine, peer_s, single = statistics.median(ours), statistics.median(theirs), statistics.median(one_thread)
    ratio = peer_s / mine
    mb = total / 1e6
    note = (
        f"{mb / mine:,.0f} MB/s vs {' '.join(peer)} {mb / peer_s:,.0f} MB/s ({ratio:.2f}x); "
        f"one thread {mb / single:,.0f} MB/s; manifest written at {mb / write_s:,.0f} MB/s; "
        f"{len(paths)} files, {total / 2**30:.1f} GiB cached; "
        f"median of {REPEATS}"
    )
    return Result(
        "backup-verify",
        "-",
        algo,
        f"{mb / mine:,.0f} MB/s",
        TARGET,
        ratio >= TARGET_RATIO,
        note,
        details={
            "ours_s": ours,
            "peer_s": theirs,
            "bytes": total,
            "write_s": write_s,
            "ratio": ratio,
            "one_thread_s": one_thread,
        },
    )


def _verify(manifest_path: Path, threads: int = 0) -> float:
    config = BackupFilesConfig.model_validate(
        {"manifest": str(manifest_path), "extra_files": "ignore", "threads": threads}
    )
    task = Task.model_validate(
        {"name": "verify", "kind": KIND.name, "targets": ["set"], "schedule": {"every": "1d"}}
    )
    target = Target.model_validate({"name": "set", "kind": "backup_set"})

    async def once() -> float:
        clock = FakeClock(T0)
        async with Resources.open() as resources:
            ctx = RunContext(task, target, config, clock, clock.now() + timedelta(hours=1), resources)
            started = time.perf_counter()
            result = await KIND.build(config).run(ctx)
            seconds = time.perf_counter() - started
        if result.status is not Status.ok:
            raise AssertionError(result.output)
        return seconds

    return asyncio.run(once())


def _peer(peer: list[str], paths: list[Path]) -> float:
    started = time.perf_counter()
    subprocess.run([*peer, *map(str, paths)], check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def _same_digests(algo: str, peer: list[str], paths: list[Path], made: files.Manifest) -> None:
    """The peer must compute the digests the manifest holds: else the comparison means nothing."""
    done = subprocess.run([*peer, *map(str, paths)], check=True, capture_output=True, text=True).stdout
    # b3sum: "digest  path"; openssl: "SHA2-256(path)= digest".
    theirs = sorted(
        line.split()[0] if algo == "blake3" else line.rsplit(" ", 1)[1] for line in done.splitlines()
    )
    if theirs != sorted(e.digest for e in made.files):
        raise AssertionError(f"{peer[0]} and maintd disagree on the {algo} digests")


if __name__ == "__main__":
    for r in run("", "-", Shape("flat", 0, 0, 0), "--quick" in sys.argv):
        print(f"{r.shape}: {r.result} ({'pass' if r.passed else 'FAIL'}): {r.note}")
