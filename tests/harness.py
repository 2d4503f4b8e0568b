"""A real ``maintd serve`` process for tests: a database, a plan directory, a file clock, gates.

Time is a file (``MAINTD_CLOCK=file:...``) the test moves; tasks can run
tests/process_support/block.py, which announces itself and blocks while a hold
file exists. Every wait polls against a deadline; every process is killed in teardown.
"""

from __future__ import annotations

import collections
import contextlib
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import pytest
from sqlalchemy import func, select

from maintd.store.db import Store
from maintd.store.models import EventRow, RunRow, ScheduleRow
from tests.ports import free_port
from tests.processes import alive

T0 = datetime(2026, 11, 27, 1, 0, tzinfo=UTC)
BLOCK = Path(__file__).parent / "process_support" / "block.py"
# seconds: the hard limit of any single wait. Only a broken test waits this long, so it is
# generous: this 2-core host's speed varies twofold and `make test` runs 4 workers on it.
WAIT = 40.0
T = TypeVar("T")


# -- helpers ------------------------------------------------------------------


def set_clock(path: Path, when: datetime) -> None:
    """Atomically: the process reads this file at any moment."""
    tmp = path.with_suffix(".tmp")
    tmp.write_text(when.isoformat())
    os.replace(tmp, path)


def http_get(url: str) -> tuple[int, Any]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")
    except (urllib.error.URLError, OSError):
        return 0, None


def call(url: str, bearer: str, body: Any = None) -> tuple[int, dict[str, str], Any]:
    """A JSON request with a bearer token (a POST when there is a body): status, headers, JSON."""
    data = None if body is None else json.dumps(body).encode()
    headers = {"Authorization": f"Bearer {bearer}", "Content-Type": "application/json"}
    try:
        with urllib.request.urlopen(urllib.request.Request(url, data, headers), timeout=15) as response:
            return response.status, dict(response.headers), json.load(response)
    except urllib.error.HTTPError as refused:
        return refused.code, dict(refused.headers), json.load(refused)


def cli(*args: str, env: dict[str, str], timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "maintd", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@dataclass
class Server:
    proc: subprocess.Popen[bytes]
    port: int
    stderr_path: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def signal(self, sig: signal.Signals) -> None:
        self.proc.send_signal(sig)

    def wait_exit(self, timeout: float) -> int:
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            pytest.fail(f"maintd did not exit within {timeout}s; stderr:\n{self.stderr()[-3000:]}")


class Harness:
    """One test's world: a database, a plan directory, a file clock, gates, processes."""

    def __init__(self, store: Store, tmp_path: Path) -> None:
        self.store = store
        self.tmp = tmp_path
        self.plan_dir = tmp_path / "plan"
        self.plan_dir.mkdir()
        self.plan_file = self.plan_dir / "plan.yaml"
        self.gate = tmp_path / "gate"
        self.gate.mkdir()
        self.clock_file = tmp_path / "clock"
        self.now = T0
        set_clock(self.clock_file, T0)
        self.servers: list[Server] = []
        base = {k: v for k, v in os.environ.items() if not k.startswith("MAINTD_")}
        self.env = {
            **base,
            "MAINTD_DATABASE_URL": store.url,
            "MAINTD_CLOCK": f"file:{self.clock_file}",
            "MAINTD_HOST": "127.0.0.1",
            "MAINTD_LOG_LEVEL": "info",
            "MAINTD_STATE_DIR": str(tmp_path / "state"),
        }

    # plan, clock, gates

    def write_plan(self, text: str) -> None:
        self.plan_file.write_text(textwrap.dedent(text).lstrip())

    def command(self, name: str) -> str:
        """A plan's argv for a blocking command named ``name`` (flow-style YAML list)."""
        return json.dumps([sys.executable, str(BLOCK), str(self.gate), name])

    def set_clock(self, when: datetime) -> None:
        self.now = when
        set_clock(self.clock_file, when)

    def hold(self, name: str) -> None:
        (self.gate / f"{name}.hold").touch()

    def release(self, name: str) -> None:
        (self.gate / f"{name}.hold").unlink(missing_ok=True)

    def started(self, name: str) -> list[int]:
        """Pids of the commands named ``name`` that have started, oldest first."""
        files = sorted(self.gate.glob(f"{name}.*.started"), key=lambda p: p.stat().st_mtime_ns)
        return [int(p.read_text()) for p in files]

    # processes

    def serve(self, *extra: str) -> Server:
        port = free_port()
        stderr_path = self.tmp / f"serve-{len(self.servers)}.stderr"
        stdout_path = stderr_path.with_suffix(".stdout")
        with open(stderr_path, "wb") as err, open(stdout_path, "wb") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "maintd", "serve", "--plan", str(self.plan_dir), *extra],
                env={**self.env, "MAINTD_PORT": str(port)},
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                start_new_session=True,  # teardown kills the whole group
            )
        server = Server(proc, port, stderr_path)
        self.servers.append(server)
        return server

    def wait_ready(self, server: Server) -> dict[str, Any]:
        def ready() -> dict[str, Any] | None:
            code, body = http_get(server.url + "/readyz")
            return body if code == 200 else None

        return self.wait_for("GET /readyz to answer 200", ready, server)

    def wait_for(
        self, what: str, probe: Callable[[], T | None], server: Server | None = None, limit: float = WAIT
    ) -> T:
        """Poll ``probe`` until it returns something truthy; fail clearly after ``limit`` seconds."""
        deadline = time.monotonic() + limit
        while True:
            value = probe()
            if value:
                return value
            if server is not None and server.proc.poll() is not None:
                pytest.fail(
                    f"maintd exited ({server.proc.returncode}) while waiting for {what}; "
                    f"stderr:\n{server.stderr()[-3000:]}"
                )
            if time.monotonic() > deadline:
                tail = server.stderr()[-3000:] if server else ""
                pytest.fail(f"gave up after {limit}s waiting for {what}; last: {value!r}\n{tail}")
            time.sleep(0.02)

    def cleanup(self) -> None:
        for server in self.servers:
            if server.proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(server.proc.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                server.proc.wait(timeout=10)
        # Commands run in their own sessions; after a SIGKILL of maintd they are orphans.
        for hold in self.gate.glob("*.hold"):
            hold.unlink()
        for started in self.gate.glob("*.started"):
            pid = int(started.read_text())
            try:
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            except OSError:
                continue
            if str(self.gate).encode() in cmdline and alive(pid):
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(pid, signal.SIGKILL)

    # the database

    def runs(self) -> list[RunRow]:
        with self.store.read() as s:
            return list(s.scalars(select(RunRow).order_by(RunRow.started_at, RunRow.scheduled_for)))

    def counts(self, task: str | None = None) -> collections.Counter[tuple[str, str, str | None]]:
        """Runs by (trigger, state, stop_reason)."""
        stmt = select(RunRow.trigger, RunRow.state, RunRow.stop_reason, func.count()).group_by(
            RunRow.trigger, RunRow.state, RunRow.stop_reason
        )
        if task is not None:
            stmt = stmt.where(RunRow.task == task)
        with self.store.read() as s:
            return collections.Counter({(t, st, r): n for t, st, r, n in s.execute(stmt)})

    def events(self, kind: str) -> list[EventRow]:
        with self.store.read() as s:
            return list(s.scalars(select(EventRow).where(EventRow.kind == kind).order_by(EventRow.id)))

    def schedule(self, task: str) -> ScheduleRow | None:
        with self.store.read() as s:
            return s.scalar(select(ScheduleRow).where(ScheduleRow.task == task))

    def finished(self, task: str, n: int) -> list[RunRow] | None:
        """The runs of ``task`` once there are ``n`` and all are done, else None."""
        runs = [r for r in self.runs() if r.task == task]
        return runs if len(runs) == n and all(r.state != "running" for r in runs) else None

    def settled(self, task: str) -> bool:
        """Nothing running, nothing owed, next due time in the future: the engine has nothing to do."""
        row = self.schedule(task)
        return (
            row is not None
            and row.running_run_id is None
            and row.retry_at is None
            and row.due_at > self.now
            and not any(r.state == "running" for r in self.runs())
        )


@pytest.fixture
def world(store: Store, tmp_path: Path) -> Iterator[Harness]:
    harness = Harness(store, tmp_path)
    try:
        yield harness
    finally:
        harness.cleanup()


@pytest.fixture
def sqlite_world(sqlite_store: Store, tmp_path: Path) -> Iterator[Harness]:
    harness = Harness(sqlite_store, tmp_path)
    try:
        yield harness
    finally:
        harness.cleanup()
