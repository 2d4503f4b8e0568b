"""The backup-files kind on real files: a manifest written by ``maintd backup manifest``, then verified."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from maintd.checks.base import CheckResult, Status
from maintd.cli.app import app
from maintd.clock import FakeClock
from maintd.tasks.backup_files import manifest
from tests.conftest import run
from tests.kinds import run_kind


def backup_set(root: Path) -> Path:
    (root / "etc").mkdir(parents=True)
    (root / "etc" / "app.yaml").write_text("replicas: 3\n")
    (root / "volumes").mkdir()
    (root / "volumes" / "pv-0.img").write_bytes(os.urandom(3 * 2**20 + 17))
    (root / "audit-2026-11.log.gz").write_bytes(os.urandom(4096))
    return root


def write_manifest(root: Path, algo: str = "blake3") -> Path:
    out = root / "MANIFEST.json"
    done = CliRunner().invoke(app, ["backup", "manifest", str(root), "--algo", algo, "-o", str(out)])
    assert done.exit_code == 0, done.output
    assert "3 files" in done.output
    return out


def verify(out: Path, clock: FakeClock | None = None, **params: Any) -> CheckResult:
    return run(run_kind("backup-files", {"manifest": str(out), **params}, clock=clock))


@pytest.mark.parametrize("algo", ["blake3", "sha256"])
def test_an_untouched_backup_verifies(tmp_path: Path, algo: str):
    out = write_manifest(backup_set(tmp_path / "set"), algo)
    result = verify(out)
    assert result.status is Status.ok, result.output
    assert result.output.startswith(f"manifest {out}: 3 files, 3.0 MiB verified ({algo})")
    assert result.metrics["files"] == 3
    assert result.metrics["bytes"] == 3 * 2**20 + 17 + 4096 + 12


def test_the_manifest_holds_the_digests_sha256sum_computes(tmp_path: Path):
    root = backup_set(tmp_path / "set")
    doc = json.loads(write_manifest(root, "sha256").read_text())
    entry = next(e for e in doc["files"] if e["path"] == "volumes/pv-0.img")
    expected = subprocess.run(
        ["sha256sum", str(root / "volumes" / "pv-0.img")], capture_output=True, text=True, check=True
    ).stdout.split()[0]
    assert entry["digest"] == expected
    assert [e["path"] for e in doc["files"]] == ["audit-2026-11.log.gz", "etc/app.yaml", "volumes/pv-0.img"]


def test_a_changed_byte_is_critical_and_names_the_file(tmp_path: Path):
    root = backup_set(tmp_path / "set")
    out = write_manifest(root)
    with open(root / "volumes" / "pv-0.img", "r+b") as f:
        f.seek(2**20 + 5)
        byte = f.read(1)
        f.seek(-1, os.SEEK_CUR)
        f.write(bytes([byte[0] ^ 1]))
    result = verify(out)
    assert result.status is Status.critical
    assert result.output.splitlines()[1].startswith("volumes/pv-0.img: blake3 ")
    assert "differs from the manifest's" in result.output


def test_a_missing_file_is_critical(tmp_path: Path):
    root = backup_set(tmp_path / "set")
    out = write_manifest(root)
    (root / "etc" / "app.yaml").unlink()
    result = verify(out)
    assert result.status is Status.critical
    assert result.output.splitlines()[1:] == ["etc/app.yaml: missing"]


def test_a_truncated_file_reports_both_sizes(tmp_path: Path):
    root = backup_set(tmp_path / "set")
    out = write_manifest(root)
    os.truncate(root / "audit-2026-11.log.gz", 100)
    result = verify(out)
    assert result.output.splitlines()[1:] == ["audit-2026-11.log.gz: 100 bytes, the manifest says 4096"]


def test_an_extra_file_is_a_warning_unless_ignored(tmp_path: Path):
    root = backup_set(tmp_path / "set")
    out = write_manifest(root)
    (root / "etc" / "stray.conf").write_text("x")
    result = verify(out)
    assert result.status is Status.warning
    assert result.output.splitlines()[1:] == ["etc/stray.conf: not in the manifest"]
    assert verify(out, extra_files="ignore").status is Status.ok


def test_a_missing_manifest_is_critical_with_the_reason(tmp_path: Path):
    result = verify(tmp_path / "nope.json")
    assert (result.status, result.output) == (
        Status.critical,
        f"manifest {tmp_path / 'nope.json'}: No such file or directory",
    )


def test_a_corrupt_manifest_is_critical(tmp_path: Path):
    out = tmp_path / "m.json"
    out.write_text('{"format": "maintd-manifest/1", "algo": "md5"')
    assert verify(out).output.startswith(f"manifest {out}: not JSON")


def test_a_backup_older_than_max_age_is_critical(tmp_path: Path):
    out = write_manifest(backup_set(tmp_path / "set"))
    written = manifest.read(str(out)).created_at
    later = FakeClock(written + timedelta(hours=30))
    result = verify(out, max_age="1d", clock=later)
    assert result.status is Status.critical
    assert "backup is 30h old" in result.output.splitlines()[1]
    assert "more than max_age 1d" in result.output


def test_verifying_against_a_moved_copy_uses_root(tmp_path: Path):
    out = write_manifest(backup_set(tmp_path / "set"))
    shutil.copytree(tmp_path / "set", tmp_path / "restored")
    result = verify(out, root=str(tmp_path / "restored"), extra_files="ignore")
    assert result.status is Status.ok, result.output
    assert f"under {tmp_path / 'restored'}" in result.output


def test_the_immediate_backup_runs_on_failure_and_its_backup_is_verified(tmp_path: Path):
    root = backup_set(tmp_path / "set")
    out = write_manifest(root)
    (root / "etc" / "app.yaml").write_text("replicas: 4\n")
    # The "backup job": writes a fresh manifest of what is there now.
    command = [sys.executable, "-m", "maintd", "backup", "manifest", str(root), "-o", str(out)]
    result = verify(out, backup_command=command)
    assert result.status is Status.critical
    assert "immediate backup: command succeeded; its backup verified ok" in result.output
    assert result.metrics["immediate_backup_verified"] == 1
    assert [c.action for c in result.changes] == ["backup"]


def test_a_dry_run_only_says_it_would_run_the_immediate_backup(tmp_path: Path):
    root = backup_set(tmp_path / "set")
    out = write_manifest(root)
    (root / "etc" / "app.yaml").unlink()
    before = out.read_bytes()
    result = run(run_kind("backup-files", {"manifest": str(out), "backup_command": ["false"]}, dry_run=True))
    assert result.status is Status.critical
    assert "dry run: would run the immediate backup ['false'] and verify it" in result.output
    assert out.read_bytes() == before


def test_an_unreadable_file_is_critical_with_permission_denied(tmp_path: Path):
    # root reads everything: verify as nobody, in a child process, files the test made private.
    shared = Path(os.environ.get("TMPDIR", "/tmp")) / f"maintd-perm-{os.getpid()}"
    shutil.rmtree(shared, ignore_errors=True)
    try:
        root = backup_set(shared)
        out = write_manifest(root)
        for path in (shared, *shared.rglob("*")):
            path.chmod(0o755 if path.is_dir() else 0o644)
        (root / "etc" / "app.yaml").chmod(0o600)
        probe = (
            "from tests.conftest import run; from tests.kinds import run_kind; "
            f"r = run(run_kind('backup-files', {{'manifest': {str(out)!r}}})); "
            "print(r.status); print(r.output)"
        )
        drop = [] if os.getuid() else ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
        done = subprocess.run(
            [*drop, sys.executable, "-c", probe],
            capture_output=True,
            text=True,
            cwd=Path(__file__).parent.parent,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        status, *lines = done.stdout.splitlines()
        assert status == "critical"
        assert lines[1:] == ["etc/app.yaml: cannot read: Permission denied"]
    finally:
        shutil.rmtree(shared, ignore_errors=True)


def test_restic_and_borg_are_unknown_when_not_installed(tmp_path: Path):
    for tool in ("restic", "borg"):
        if shutil.which(tool):
            continue
        result = run(run_kind("backup-files", {"tool": tool, "repository": str(tmp_path)}))
        assert (result.status, result.output) == (
            Status.unknown,
            f"{tool} not installed: cannot check the repository",
        )


def test_the_manifest_command_names_an_unreadable_root(tmp_path: Path):
    done = CliRunner().invoke(app, ["backup", "manifest", str(tmp_path / "no"), "-o", str(tmp_path / "m")])
    assert done.exit_code == 1
    assert f"{tmp_path / 'no'}: No such file or directory" in done.output
