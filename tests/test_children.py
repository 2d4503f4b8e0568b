"""Commands a killed maintd left running are stopped before their run is repeated."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from maintd.runner.children import Children


def started_group(tmp_path) -> subprocess.Popen[bytes]:  # type: ignore[no-untyped-def]
    """A process group like a command's: a shell with a background grandchild, in its own session."""
    ready = tmp_path / "ready"
    script = f"sleep 300 & touch {ready}; wait"
    proc = subprocess.Popen(["sh", "-c", script], start_new_session=True)
    deadline = time.monotonic() + 10
    while not ready.exists():
        assert time.monotonic() < deadline, "the test command did not start"
        time.sleep(0.01)
    return proc


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def test_a_recorded_group_of_an_interrupted_run_is_killed(tmp_path):
    children = Children(tmp_path / "children")
    proc = started_group(tmp_path)
    try:
        children.tracker("run1").started(proc.pid)
        killed = children.kill_orphans(["run1"])
        proc.wait(timeout=10)
        assert len(killed) == 2  # the shell and its background sleep
        deadline = time.monotonic() + 10
        while group_alive(proc.pid):
            assert time.monotonic() < deadline, "the group survived"
            time.sleep(0.01)
        assert list((tmp_path / "children").iterdir()) == []
    finally:
        if group_alive(proc.pid):
            os.killpg(proc.pid, signal.SIGKILL)


def test_a_finished_run_leaves_no_record_and_other_runs_are_untouched(tmp_path):
    children = Children(tmp_path / "children")
    proc = started_group(tmp_path)
    try:
        tracker = children.tracker("done")
        tracker.started(proc.pid)
        tracker.ended(proc.pid)
        children.tracker("other").started(proc.pid)
        assert children.kill_orphans(["done"]) == []
        assert group_alive(proc.pid)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


def test_a_reused_pid_is_not_killed(tmp_path):
    """A record whose process started later than recorded belongs to someone else now."""
    children = Children(tmp_path / "children")
    mine = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"], start_new_session=True)
    try:
        (tmp_path / "children").mkdir()
        # Pretend the recorded process started in the future: anything alive now is older than it.
        (tmp_path / "children" / f"old.{mine.pid}").write_text(f"{mine.pid} {10**15}\n")
        assert children.kill_orphans(["old"]) == []
        assert mine.poll() is None
    finally:
        mine.kill()
        mine.wait(timeout=10)
