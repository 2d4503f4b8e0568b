"""What the change tests share: a real HTTP service whose health follows a config file, a plan
watching it, principals, and a change worker on its own runner (the engine's loop is not run:
the tests move the fake clock and run the due steps)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, TypeVar

import pytest

from maintd.auth import Principal, Role
from maintd.changes.health import RunnerChecks
from maintd.changes.worker import ChangeWorker
from maintd.engine import Engine
from maintd.runner.runner import Runner

T = TypeVar("T")
GOOD, BROKEN = "mode = serving\n", "mode = brok en\n"


@dataclass
class Service:
    url: str
    config: Path  # the live config: /health is 200 while it says "serving", else 503
    good: Path  # a config file a change may install
    broken: Path

    def healthy(self) -> bool:
        import urllib.error
        import urllib.request

        try:
            with urllib.request.urlopen(self.url, timeout=5) as response:
                return bool(response.status == 200)
        except urllib.error.HTTPError:
            return False


@pytest.fixture(name="web")
def web_fixture(tmp_path: Path) -> Iterator[Service]:
    config = tmp_path / "service.conf"
    config.write_text(GOOD)
    (tmp_path / "good.conf").write_text(GOOD)
    (tmp_path / "broken.conf").write_text(BROKEN)

    class Health(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            ok = "serving" in config.read_text()
            body = b"serving\n" if ok else b"config broken\n"
            self.send_response(200 if ok else 503)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Health)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_address[1]}/health"
    try:
        yield Service(url, config, tmp_path / "good.conf", tmp_path / "broken.conf")
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def plan_text(service: Service, extra: str = "") -> str:
    """A plan watching the service; procedure swap-config installs a file, keeping the old one."""
    return f"""
targets:
  - {{name: web, kind: service, connection: {{url: "{service.url}"}}}}
tasks:
  - name: web-health
    kind: http
    targets: [web]
    schedule: {{every: 1h}}
    timeout: 10s
    params: {{expect_status: [200]}}
people:
  - {{name: rob, email: rob@example.com, notify: ["json://127.0.0.1:9/rob"]}}
  - {{name: tess, email: tess@example.com}}
changes:
  watch: {{window: 5m, interval: 1m, checks: [web-health]}}
  procedures:
    - name: swap-config
      description: install a config file, keeping the one before
      snapshot: [cp, "{service.config}", "{service.config}.before-{{change}}"]
      apply: [cp, "{{new}}", "{service.config}"]
      rollback: [cp, "{service.config}.before-{{change}}", "{service.config}"]
      timeout: 30s
    - name: fail-apply
      apply: [ls, "/nonexistent/{{target}}"]
      rollback: ["true"]
  types:
    standard: {{procedures: [swap-config]}}
{extra}
"""


def who(name: str, role: Role) -> Principal:
    return Principal(name, role)


ROB, TESS, MIA, MAX, DIRK, VERA = (
    who("rob", Role.responder),
    who("tess", Role.team_lead),
    who("mia", Role.manager),
    who("max", Role.manager),
    who("dirk", Role.director),
    who("vera", Role.viewer),
)


def make_worker(engine: Engine) -> tuple[ChangeWorker, Runner]:
    """A worker like the engine's, on a runner of its own (started in the test's event loop)."""
    runner = Runner(store=engine.store, registry=engine.registry, clock=engine.clock, owner=engine.instance)
    checks = RunnerChecks(store=engine.store, runner=runner, clock=engine.clock, owner=engine.instance)
    worker = ChangeWorker(
        store=engine.store,
        clock=engine.clock,
        checks=checks,
        owner=engine.instance,
        plan=lambda: engine.loaded,
    )
    return worker, runner


def run_with_worker(engine: Engine, body: Callable[[ChangeWorker], Coroutine[Any, Any, T]]) -> T:
    """Run ``body(worker)`` in a fresh event loop, stopping the worker's runner afterwards."""

    async def main() -> T:
        worker, runner = make_worker(engine)
        try:
            return await body(worker)
        finally:
            await runner.stop(0)

    return asyncio.run(main())
