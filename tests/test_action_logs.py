"""The logs action on real files: ages are set from the injected clock, writers are real processes."""

from __future__ import annotations

import gzip
import os
import subprocess
import sys
import textwrap
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import zstandard
from pydantic import ValidationError

from maintd.checks.base import CheckResult, Status
from maintd.clock import FakeClock
from maintd.tasks.logs import archive, frames
from maintd.tasks.logs.config import Codec
from tests.conftest import T0, run
from tests.kinds import REGISTRY, make_target, run_kind
from tests.manual_runs import action_events, run_by_hand

TODAY = T0.strftime("%Y%m%d")  # 20261127


def logs(params: dict[str, Any], *, dry_run: bool = False, clock: FakeClock | None = None) -> CheckResult:
    return run(run_kind("logs", params, dry_run=dry_run, clock=clock))


def write(path: Path, text: str, *, days_old: float = 0) -> Path:
    path.write_text(text)
    when = (T0 - timedelta(days=days_old)).timestamp()
    os.utime(path, (when, when))
    return path


def lines(n: int, tag: str = "GET") -> str:
    stamp = "27/Nov/2026:00:00:{:02d} +0000"
    return "".join(f'10.0.0.{i % 250} - - [{stamp.format(i % 60)}] "{tag} /{i}" 200 {i}\n' for i in range(n))


def tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


# -- rotation -------------------------------------------------------------------------------

WRITER = textwrap.dedent(
    """
    import signal, sys
    log_path, pid_path = sys.argv[1], sys.argv[2]
    log = open(log_path, "a", buffering=1)

    def reopen(signum, frame):
        global log
        log.close()
        log = open(log_path, "a", buffering=1)
        log.write("after reopen\\n")
        print("reopened", flush=True)

    signal.signal(signal.SIGHUP, reopen)
    log.write("before rotation\\n")
    open(pid_path, "w").write(str(__import__("os").getpid()))
    print("ready", flush=True)
    for line in sys.stdin:
        log.write(line)
    """
)


def test_rename_rotates_the_log_and_the_writer_reopens_it_on_sighup(tmp_path):
    log, pid_file = tmp_path / "app.log", tmp_path / "app.pid"
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(log), str(pid_file)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert writer.stdout is not None and writer.stdin is not None
        assert writer.stdout.readline() == "ready\n"
        result = logs({"path": str(tmp_path), "pid_file": str(pid_file)})
        assert writer.stdout.readline() == "reopened\n"
        writer.stdin.write("later line\n")
        writer.stdin.close()
        assert writer.wait(timeout=10) == 0
    finally:
        writer.kill()
    assert result.status is Status.ok, result.output
    assert (tmp_path / f"app.log-{TODAY}").read_text() == "before rotation\n"
    assert log.read_text() == "after reopen\nlater line\n"
    assert result.metrics["files_rotated"] == 1
    done = f"renamed to app.log-{TODAY}, new empty log created, process {writer.pid} signalled"
    assert done in result.output
    assert [(c.action, c.target) for c in result.changes] == [("rotate", str(log))]


def test_a_pid_file_naming_no_process_stops_the_run_before_anything_is_renamed(tmp_path):
    write(tmp_path / "app.log", "a line\n")
    (tmp_path / "app.pid").write_text("999999999\n")
    result = logs({"path": str(tmp_path), "pid_file": str(tmp_path / "app.pid")})
    assert result.status is Status.critical
    assert result.output == (
        f"{tmp_path}: nothing done, process 999999999 from pid file {tmp_path / 'app.pid'} is not running"
    )
    assert sorted(tree(tmp_path)) == ["app.log", "app.pid"]


def test_copytruncate_keeps_the_live_file_and_moves_its_lines(tmp_path):
    log = write(tmp_path / "app.log", lines(1000))
    inode = log.stat().st_ino
    with log.open("a") as held_open:  # a writer that never reopens
        result = logs({"path": str(tmp_path), "method": "copytruncate"})
        held_open.write("next line\n")
    assert result.status is Status.ok, result.output
    assert (tmp_path / f"app.log-{TODAY}").read_text() == lines(1000)
    assert log.stat().st_ino == inode
    # O_APPEND writers land at the new end: no hole of NUL bytes where the old lines were.
    assert log.read_text() == "next line\n"
    assert "and truncated" in result.output


def test_a_rotated_log_is_named_by_the_dateformat(tmp_path):
    write(tmp_path / "api.log", "x\n")
    result = logs({"path": str(tmp_path), "dateformat": ".%Y-%m-%d-%H"})
    assert result.status is Status.ok
    assert sorted(tree(tmp_path)) == ["api.log", "api.log.2026-11-27-01"]


def test_only_logs_matching_include_are_rotated(tmp_path):
    write(tmp_path / "app.log", "x\n")
    write(tmp_path / "notes.txt", "y\n")
    logs({"path": str(tmp_path)})
    assert sorted(tree(tmp_path)) == ["app.log", f"app.log-{TODAY}", "notes.txt"]


def test_rotated_logs_and_archives_are_never_taken_for_live_logs(tmp_path):
    write(tmp_path / "app", "x\n")
    write(tmp_path / "app-20261101", "y\n", days_old=26)
    write(tmp_path / "app-20261001.zst", "z", days_old=57)
    result = logs({"path": str(tmp_path), "include": ["*"]})
    assert result.status is Status.ok, result.output
    assert sorted(tree(tmp_path)) == ["app", "app-20261001.zst", "app-20261101", f"app-{TODAY}"]


def test_an_empty_log_is_not_rotated_unless_notifempty_is_off(tmp_path):
    write(tmp_path / "app.log", "")
    result = logs({"path": str(tmp_path)})
    assert f"{tmp_path / 'app.log'}: empty, not rotated (notifempty)" in result.output
    assert sorted(tree(tmp_path)) == ["app.log"]
    logs({"path": str(tmp_path), "notifempty": False})
    assert sorted(tree(tmp_path)) == ["app.log", f"app.log-{TODAY}"]


def test_a_missing_directory_is_critical_unless_missingok(tmp_path):
    gone = tmp_path / "gone"
    result = logs({"path": str(gone)})
    assert result.status is Status.critical
    assert result.output == f"{gone}: nothing done, {gone}: no such directory"
    result = logs({"path": str(gone), "missingok": True})
    assert result.status is Status.ok
    assert f"{gone}: no such directory (missingok)" in result.output


def test_a_named_log_that_is_missing_is_critical_unless_missingok(tmp_path):
    write(tmp_path / "old.log-20261001", "x\n", days_old=100)
    result = logs({"path": str(tmp_path), "include": ["app.log"]})
    assert result.output == f"{tmp_path}: nothing done, {tmp_path / 'app.log'}: no such file"
    assert (tmp_path / "old.log-20261001").exists()
    assert logs({"path": str(tmp_path), "include": ["app.log"], "missingok": True}).status is Status.ok


def test_the_directory_defaults_to_the_targets_connection_path(tmp_path):
    write(tmp_path / "app.log", "x\n")
    target = make_target(kind="log_directory", connection={"path": str(tmp_path)})
    result = run(run_kind("logs", {}, target))
    assert result.metrics["files_rotated"] == 1


# -- compression and verification -------------------------------------------------------------


def test_rotated_logs_older_than_compress_after_are_compressed_verified_and_removed(tmp_path):
    old = write(tmp_path / "app.log-20261020", lines(5000), days_old=38)
    young = write(tmp_path / "app.log-20261120", lines(10), days_old=7)
    result = logs({"path": str(tmp_path)})
    assert result.status is Status.ok, result.output
    packed = tmp_path / "app.log-20261020.zst"
    assert zstandard.ZstdDecompressor().stream_reader(packed.read_bytes()).read() == lines(5000).encode()
    assert not old.exists() and young.exists()
    assert packed.stat().st_mtime == (T0 - timedelta(days=38)).timestamp()  # it keeps the log's age
    assert result.metrics["files_compressed"] == 1
    assert result.metrics["bytes_before"] == len(lines(5000))
    assert result.metrics["bytes_after"] == packed.stat().st_size
    assert result.output.startswith("rotated 0, compressed 1 (")
    (change,) = result.changes
    assert (change.action, change.target, change.detail["to"]) == ("compress", str(old), str(packed))


def test_gzip_archives_are_gzip_and_go_to_the_archive_dir(tmp_path):
    write(tmp_path / "app.log-20261020", lines(300), days_old=38)
    result = logs({"path": str(tmp_path), "compression": "gzip", "archive_dir": "archive"})
    assert result.status is Status.ok, result.output
    assert gzip.decompress((tmp_path / "archive" / "app.log-20261020.gz").read_bytes()) == lines(300).encode()
    assert sorted(tree(tmp_path)) == ["archive/app.log-20261020.gz"]
    assert [c.action for c in result.changes] == ["mkdir", "compress"]


@pytest.mark.parametrize("codec", list(Codec))
def test_a_log_larger_than_a_segment_is_one_file_the_standard_tools_read(tmp_path, codec):
    body = lines(200_000) * 2  # about 20 MB: two segments
    src = write(tmp_path / "big.log-20261001", body)
    dest = tmp_path / f"big.log-20261001{codec.suffix}"
    done = archive.compress(src, dest, codec=codec, level=1, threads=2)
    tool = ["zstd", "-dc"] if codec is Codec.zstd else ["gzip", "-dc"]
    assert subprocess.run([*tool, str(dest)], capture_output=True, check=True).stdout == body.encode()
    assert (done.bytes_before, done.bytes_after) == (len(body), dest.stat().st_size)


def squeezing(monkeypatch: pytest.MonkeyPatch, spoil: Any) -> None:
    """The seam between compression and verification: every frame made is passed through ``spoil``."""
    real = frames._squeezer

    def spoiled(codec: Codec, level: int) -> frames.Squeeze:
        squeeze = real(codec, level)
        return lambda data: spoil(squeeze(data), data)

    monkeypatch.setattr(frames, "_squeezer", spoiled)


def flip_a_bit(frame: bytes, _data: bytearray) -> bytes:
    spoilt = bytearray(frame)
    spoilt[len(spoilt) // 2] ^= 0x10
    return bytes(spoilt)


def another_line(_frame: bytes, data: bytearray) -> bytes:
    # A valid frame, checksum and all, of content that differs from the segment in one byte.
    changed = bytearray(data)
    changed[-2:-1] = b"X"
    return zstandard.ZstdCompressor(write_checksum=True, write_content_size=True).compress(changed)


@pytest.mark.parametrize("spoil", [flip_a_bit, another_line])
def test_a_frame_that_does_not_decompress_to_its_segment_stops_the_run(tmp_path, monkeypatch, spoil):
    original = write(tmp_path / "app.log-20261020", lines(5000), days_old=38)
    expired = write(tmp_path / "api.log-20260701", "expired\n", days_old=149)
    squeezing(monkeypatch, spoil)
    result = logs({"path": str(tmp_path)})
    assert result.status is Status.critical
    first = result.output.splitlines()[0]
    size = len(lines(5000))
    assert first.startswith(f"stopped: the frame for bytes 0-{size} does not decompress")
    assert first.endswith("; nothing removed; nothing after it was done")
    assert original.read_text() == lines(5000) and expired.exists()
    assert sorted(tree(tmp_path)) == ["api.log-20260701", "app.log-20261020"]  # no archive, no .partial


@pytest.mark.parametrize("codec", list(Codec))
def test_a_cut_short_last_frame_of_a_long_log_is_caught_and_named_by_its_bytes(tmp_path, monkeypatch, codec):
    body = lines(200_000) * 2  # 13 segments, the last one short
    src = write(tmp_path / "big.log-20261001", body)
    made: list[int] = []

    def last_cut_short(frame: bytes, data: bytearray) -> bytes:
        made.append(len(data))
        return frame[:-3] if len(data) < frames.SEGMENT else frame  # the last, short segment cut short

    squeezing(monkeypatch, last_cut_short)
    last = len(body) // frames.SEGMENT * frames.SEGMENT
    dest = tmp_path / f"big.log-20261001{codec.suffix}"
    with pytest.raises(
        archive.ArchiveError, match=rf"the frame for bytes {last}-{len(body)} does not decompress \("
    ):
        archive.compress(src, dest, codec=codec, level=1, threads=2)
    assert src.read_text() == body and sorted(tree(tmp_path)) == ["big.log-20261001"]
    assert len(body) - last in made


def test_frames_written_out_of_order_are_refused(tmp_path, monkeypatch):
    body = lines(200_000) * 2
    src = write(tmp_path / "big.log-20261001", body)
    real = frames.frames

    def swapped(*args: Any) -> Any:
        made = list(real(*args))
        yield from [made[1], made[0], *made[2:]]

    monkeypatch.setattr(archive, "frames", swapped)
    with pytest.raises(
        archive.ArchiveError, match=rf"the frame for byte {frames.SEGMENT} came where byte 0 belongs"
    ):
        archive.compress(src, tmp_path / "big.log-20261001.zst", codec=Codec.zstd, level=1, threads=2)
    assert src.read_text() == body and sorted(tree(tmp_path)) == ["big.log-20261001"]


def test_an_archive_renamed_away_while_written_keeps_the_original(tmp_path, monkeypatch):
    # Another process replacing the temporary file: the name no longer holds what was written.
    src = write(tmp_path / "app.log-20261020", lines(3000))
    dest = tmp_path / "app.log-20261020.zst"
    tmp = tmp_path / ".app.log-20261020.zst.partial"
    real = archive._write_frames

    def then_replaced(*args: Any) -> Any:
        done = real(*args)
        tmp.rename(tmp_path / "elsewhere")
        tmp.write_bytes(b"not ours")
        return done

    monkeypatch.setattr(archive, "_write_frames", then_replaced)
    with pytest.raises(archive.ArchiveError, match=f"{tmp} was replaced while it was written; {src} kept"):
        archive.compress(src, dest, codec=Codec.zstd, level=3, threads=1)
    assert src.read_text() == lines(3000) and not dest.exists()


def test_a_corrupt_archive_keeps_its_original_and_the_run_is_critical(tmp_path):
    original = write(tmp_path / "app.log-20261020", lines(2000), days_old=38)
    packed = tmp_path / "app.log-20261020.zst"
    # A run killed after writing the archive and before removing the log, then a flipped bit:
    data = bytearray(zstandard.ZstdCompressor(write_checksum=True).compress(original.read_bytes()))
    data[-2] ^= 0x40  # in the frame's content checksum
    packed.write_bytes(bytes(data))
    old = write(tmp_path / "api.log-20260701", "expired\n", days_old=149)  # listed first, deleted last
    result = logs({"path": str(tmp_path)})
    assert result.status is Status.critical
    assert result.output.splitlines()[0] == (
        f"stopped: {packed} is corrupt (zstd decompressor error: Restored data doesn't match checksum); "
        f"{original} kept; nothing after it was done"
    )
    assert original.read_text() == lines(2000)
    assert old.exists()  # the deletion planned after it was not done
    assert result.metrics["files_deleted"] == 0


def test_an_archive_left_beside_its_original_is_adopted_when_it_matches(tmp_path):
    original = write(tmp_path / "app.log-20261020", lines(100), days_old=38)
    packed = tmp_path / "app.log-20261020.gz"
    packed.write_bytes(gzip.compress(original.read_bytes()))
    result = logs({"path": str(tmp_path), "compression": "gzip"})
    assert result.status is Status.ok
    assert "existing archive decompressed and compared byte for byte" in result.output
    assert sorted(tree(tmp_path)) == ["app.log-20261020.gz"]


def test_an_archive_that_differs_from_its_original_keeps_the_original(tmp_path):
    original = write(tmp_path / "app.log-20261020", lines(100), days_old=38)
    packed = tmp_path / "app.log-20261020.gz"
    packed.write_bytes(gzip.compress(lines(99).encode()))
    result = logs({"path": str(tmp_path), "compression": "gzip"})
    assert result.status is Status.critical
    assert f"{packed} holds {len(lines(99))} bytes, {original} has {len(lines(100))}" in result.output
    assert original.exists()


# -- deletion, legal hold, minimum retention ------------------------------------------------------


def test_rotated_logs_past_maxage_are_deleted_unless_held(tmp_path):
    write(tmp_path / "app.log-20260801.zst", "a", days_old=118)
    write(tmp_path / "pay.log-20260801.zst", "b", days_old=118)
    write(tmp_path / "app.log-20260901.zst", "c", days_old=87)
    result = logs({"path": str(tmp_path), "legal_hold": ["pay.log-*"]})
    assert result.status is Status.ok
    assert sorted(tree(tmp_path)) == ["app.log-20260901.zst", "pay.log-20260801.zst"]
    kept = tmp_path / "pay.log-20260801.zst"
    held = f"held {kept}: older than maxage 90 days, under legal hold 'pay.log-*'"
    assert held in result.output
    assert (result.metrics["files_deleted"], result.metrics["files_held"]) == (1, 1)
    (change,) = result.changes
    assert change.action == "delete" and change.detail["reason"] == "older than maxage 90 days"


def test_an_absolute_legal_hold_pattern_matches_the_full_path(tmp_path):
    write(tmp_path / "app.log-20260801.zst", "a", days_old=118)
    result = logs({"path": str(tmp_path), "legal_hold": [f"{tmp_path}/*"]})
    assert result.metrics["files_held"] == 1 and (tmp_path / "app.log-20260801.zst").exists()


def test_rotate_count_keeps_the_newest_generations_but_not_inside_min_retention(tmp_path):
    for day, age in (("20261126", 1), ("20261125", 2), ("20261124", 3), ("20260901", 87)):
        write(tmp_path / f"app.log-{day}", "x\n", days_old=age)
    write(tmp_path / "app.log", "today\n")
    result = logs({"path": str(tmp_path), "rotate": 2, "min_retention": "72h"})
    # Today's rotation and the 26th are the two kept; the 25th is only 2 days old: held.
    assert sorted(tree(tmp_path)) == ["app.log", "app.log-20261125", "app.log-20261126", f"app.log-{TODAY}"]
    assert f"held {tmp_path / 'app.log-20261125'}: beyond rotate 2, younger than min_retention 3 days" in (
        result.output
    )
    assert result.metrics["files_deleted"] == 2


def test_an_immutable_directory_refuses_the_run_and_nothing_is_deleted(tmp_path):
    # Tests run as root, which ignores file modes; an immutable directory stops root too (EPERM).
    logdir = tmp_path / "logs"
    logdir.mkdir()
    write(logdir / "app.log-20260801.zst", "a", days_old=118)
    write(logdir / "app.log-20261020", lines(10), days_old=38)
    subprocess.run(["chattr", "+i", str(logdir)], check=True)
    try:
        result = logs({"path": str(logdir)})
    finally:
        subprocess.run(["chattr", "-i", str(logdir)], check=True)
    assert result.status is Status.critical
    assert result.output == (
        f"{logdir}: nothing done, {logdir}: permission denied (maintd cannot create or remove files there)"
    )
    assert sorted(tree(logdir)) == ["app.log-20260801.zst", "app.log-20261020"]


def test_a_directory_where_the_rotated_log_must_go_refuses_the_run(tmp_path):
    write(tmp_path / "app.log", "x\n")
    (tmp_path / f"app.log-{TODAY}").mkdir()
    write(tmp_path / "app.log-20260801.zst", "a", days_old=118)
    result = logs({"path": str(tmp_path)})
    assert result.status is Status.critical
    assert result.output == (
        f"{tmp_path}: nothing done, {tmp_path / f'app.log-{TODAY}'}: exists and is not a rotated log; "
        f"{tmp_path / 'app.log'} cannot be rotated to it"
    )
    assert (tmp_path / "app.log").exists() and (tmp_path / "app.log-20260801.zst").exists()


# -- dry run, idempotence, config ----------------------------------------------------------------


def populated(root: Path) -> None:
    write(root / "app.log", lines(50))
    write(root / "app.log-20261020", lines(70), days_old=38)
    write(root / "app.log-20260801.zst", "old", days_old=118)


def test_a_dry_run_changes_nothing_and_reports_the_plan(tmp_path):
    populated(tmp_path)
    before = tree(tmp_path)
    result = logs({"path": str(tmp_path)}, dry_run=True)
    assert tree(tmp_path) == before
    head = "dry run, nothing changed: would rotate 1, compress 1, delete 1; 0 held"
    assert result.output.splitlines()[0] == head
    assert [(c.action, Path(c.target).name) for c in result.changes] == [
        ("rotate", "app.log"),
        ("compress", "app.log-20261020"),
        ("delete", "app.log-20260801.zst"),
    ]


def test_a_second_run_does_nothing(tmp_path):
    populated(tmp_path)
    first = logs({"path": str(tmp_path)})
    counts = [first.metrics[f"files_{what}"] for what in ("rotated", "compressed", "deleted")]
    assert counts == [1, 1, 1]
    after = tree(tmp_path)
    write(tmp_path / "app.log", "written since\n")
    after["app.log"] = b"written since\n"
    second = logs({"path": str(tmp_path)})
    assert second.status is Status.ok
    assert second.changes == []
    assert tree(tmp_path) == after
    assert f"{tmp_path / 'app.log'}: already rotated as app.log-{TODAY}" in second.output


def test_the_metrics_count_files_and_bytes(tmp_path):
    populated(tmp_path)
    result = logs({"path": str(tmp_path), "legal_hold": ["nothing"]})
    m = result.metrics
    assert m["files_rotated"] == 1 and m["files_compressed"] == 1 and m["files_deleted"] == 1
    assert m["bytes_before"] == len(lines(70)) and 0 < m["bytes_after"] < m["bytes_before"]
    assert m["bytes_deleted"] == 3 and m["files_held"] == 0
    # Kept: today's rotation (uncompressed) and the new archive.
    assert m["rotated_files_kept"] == 2
    assert m["oldest_kept_mtime"] == (T0 - timedelta(days=38)).timestamp()


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"signal": "NOPE"}, "'NOPE' is not a signal name"),
        ({"include": ["/var/log/*.log"]}, "include takes file-name patterns"),
        ({"dateformat": "-%Y%j"}, "dateformat uses"),
        ({"compression": "gzip", "level": 12}, "gzip level is 1 to 9, not 12"),
    ],
)
def test_bad_params_are_refused_when_the_plan_loads(params, message):
    with pytest.raises(ValidationError, match=message):
        REGISTRY.get("logs").config.model_validate(params)


# -- through the engine: the audit trail ---------------------------------------------------------

AUDIT_PLAN = """
targets:
  - name: web-logs
    kind: log_directory
    connection: {path: %s}
tasks:
  - name: log-retention
    kind: logs
    targets: [web-logs]
    schedule: {cadence: weekly, window: "Sunday 03:00-05:00 UTC"}
"""


def test_a_run_is_audited_as_one_event_listing_each_change(store, write_plan, make_engine, clock):
    logdir = write_plan("").parent / "logs"
    logdir.mkdir()
    populated(logdir)
    engine = make_engine(store, write_plan(AUDIT_PLAN % logdir))
    assert engine.reload().ok
    for dry_run in (True, False):
        run_by_hand(engine, "log-retention", "web-logs", dry_run=dry_run)
    audit = action_events(store)
    assert [e.kind for e in audit] == ["action.planned", "action.applied"]
    applied = audit[1].payload["changes"]
    assert [(c["action"], Path(c["target"]).name) for c in applied] == [
        ("rotate", "app.log"),
        ("compress", "app.log-20261020"),
        ("delete", "app.log-20260801.zst"),
    ]
    assert applied[1]["detail"]["bytes_before"] == len(lines(70))
