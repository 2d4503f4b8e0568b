"""The rotate-credentials kind with real hook programs: a credential store of files (one per valid
generation), a consumer's config file, and a log of the hooks in the order they ran."""

from __future__ import annotations

import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from maintd.checks.base import CheckResult, Status
from maintd.clock import FakeClock
from maintd.tasks.rotate_credentials.generic import RotateCredentialsConfig
from tests.conftest import T0, run
from tests.kinds import run_kind

# One program plays every hook: argv[1] is the step; the store is argv[2].
HOOK = r"""
import os, sys, pathlib
step, store = sys.argv[1], pathlib.Path(sys.argv[2])
fail = set(os.environ.get("FAIL", "").split(","))
gen, prev = os.environ["MAINTD_GENERATION"], os.environ["MAINTD_PREVIOUS_GENERATION"]
with open(store / "log", "a") as log:
    log.write(f"{step} {gen} {prev}\n")
secret_file = os.environ.get("MAINTD_SECRET_FILE", "")
if step == "generate":
    print("s3cr3t-from-the-vault-" + gen)
    sys.exit(0)
if step in fail:
    print(f"{step} refused")
    sys.exit(1)
secret = pathlib.Path(secret_file).read_text() if step != "retire" else None
if step == "install":
    assert oct(os.stat(secret_file).st_mode & 0o777) == "0o600"
    (store / "valid").mkdir(exist_ok=True)
    (store / "valid" / gen).write_text(secret)
    print(f"installed generation {gen}: {secret}")  # a careless hook echoing the secret
elif step == "reload":
    (store / "consumer.conf").write_text(secret)
elif step == "verify":
    used = (store / "consumer.conf").read_text()
    valid = {p.read_text() for p in (store / "valid").iterdir()}
    sys.exit(0 if used == secret and used in valid else 1)
elif step == "retire":
    (store / "valid" / prev).unlink(missing_ok=True)
"""


def hooks(tmp_path: Path, *, generate: bool = False) -> dict[str, Any]:
    program = tmp_path / "hook.py"
    program.write_text(HOOK)
    store = tmp_path / "store"
    (store / "valid").mkdir(parents=True, exist_ok=True)
    (store / "valid" / "0").write_text("the-old-secret")
    (store / "consumer.conf").write_text("the-old-secret")

    def hook(step: str) -> list[str]:
        return [sys.executable, str(program), step, str(store)]

    params: dict[str, Any] = {"credential": "api-key", "install": hook("install"), "reload": hook("reload"),
                              "verify": hook("verify"), "retire": hook("retire")}  # fmt: skip
    if generate:
        params["generate"] = hook("generate")
    return params


def log(tmp_path: Path) -> list[str]:
    path = tmp_path / "store" / "log"
    return path.read_text().splitlines() if path.exists() else []


def rotate(params: dict[str, Any], memo: dict[str, Any] | None = None, **kw: Any) -> CheckResult:
    result: CheckResult = run(run_kind("rotate-credentials", params, memo=memo, **kw))
    return result


def test_a_rotation_installs_reloads_verifies_and_only_then_retires_and_never_shows_the_secret(tmp_path):
    result = rotate(hooks(tmp_path))
    assert result.status is Status.ok, result.output
    assert log(tmp_path) == ["install 1 0", "reload 1 0", "verify 1 0", "retire 1 0"]
    store = tmp_path / "store"
    secret = (store / "consumer.conf").read_text()
    assert sorted(p.name for p in (store / "valid").iterdir()) == ["1"] and len(secret) >= 32
    assert secret not in result.output and "installed generation 1: [redacted]" in result.output
    assert result.output.splitlines()[-1] == "rotated to generation 1, 0 retired"
    assert [c.action for c in result.changes] == ["install", "reload", "verify", "retire"]
    assert result.memo == {"generation": 1, "rotated_at": T0.isoformat()}
    assert not list(Path(_tmp()).glob("maintd-rotate-*"))  # the secret file is gone


def _tmp() -> str:
    import tempfile

    return tempfile.gettempdir()


def test_a_failing_verify_retires_nothing_and_the_old_secret_still_works(tmp_path, monkeypatch):
    monkeypatch.setenv("FAIL", "verify")
    result = rotate(hooks(tmp_path))
    assert result.status is Status.critical
    assert log(tmp_path) == ["install 1 0", "reload 1 0", "verify 1 0"]  # no retire
    assert (tmp_path / "store" / "valid" / "0").read_text() == "the-old-secret"
    assert "verify failed: the old secret (generation 0) was not retired and still works" in result.output
    assert result.memo == {"generation": 0}


def test_a_failing_install_changes_nothing_after_it(tmp_path, monkeypatch):
    monkeypatch.setenv("FAIL", "install")
    result = rotate(hooks(tmp_path))
    assert result.status is Status.critical and log(tmp_path) == ["install 1 0"]
    assert (tmp_path / "store" / "consumer.conf").read_text() == "the-old-secret"


def test_a_failed_retirement_is_retried_alone_by_the_next_run(tmp_path, monkeypatch):
    monkeypatch.setenv("FAIL", "retire")
    first = rotate(hooks(tmp_path))
    assert first.status is Status.warning and first.memo is not None
    assert first.memo["retire_pending"] == 0 and first.memo["generation"] == 1
    monkeypatch.setenv("FAIL", "")
    later = rotate(hooks(tmp_path), memo=first.memo)
    assert later.status is Status.ok and "generation 0 retired" in later.output
    assert log(tmp_path)[-1] == "retire 1 0" and len(log(tmp_path)) == 5  # no new rotation
    assert sorted(p.name for p in (tmp_path / "store" / "valid").iterdir()) == ["1"]


def test_a_generate_hook_supplies_the_secret_and_its_output_is_never_shown(tmp_path):
    result = rotate(hooks(tmp_path, generate=True))
    assert result.status is Status.ok, result.output
    assert (tmp_path / "store" / "consumer.conf").read_text() == "s3cr3t-from-the-vault-1"
    assert "s3cr3t" not in result.output and log(tmp_path)[0] == "generate 1 0"


def test_a_dry_run_and_a_recent_rotation_change_nothing(tmp_path):
    dry = rotate(hooks(tmp_path), dry_run=True)
    assert (
        "dry run: would rotate to generation 1: generate -> install -> reload -> verify -> retire"
        in dry.output
    )
    recent = {"generation": 3, "rotated_at": (T0 - timedelta(minutes=10)).isoformat()}
    again = rotate(hooks(tmp_path), memo=recent, clock=FakeClock(T0))
    assert "within min_interval" in again.output and log(tmp_path) == []


def test_the_config_wants_the_hooks():
    with pytest.raises(ValidationError, match="verify"):
        RotateCredentialsConfig.model_validate({"credential": "x", "install": ["a"], "retire": ["b"]})
