"""redis-server processes of a test's own, on free loopback ports: the ``redis_server`` fixture."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from maintd.plan.models import Target
from tests.harness import free_port
from tests.kinds import make_target


class RedisServer:
    """One redis-server process of the test's own: no persistence, loopback only."""

    def __init__(self, directory: Path, *args: str, tls: tuple[Path, Path] | None = None) -> None:
        self.directory = directory
        self.args = args
        self.tls = tls  # (certificate, key): serve TLS only
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    def listen(self) -> list[str]:
        if self.tls is None:
            return ["--port", str(self.port)]
        cert, key = self.tls
        return ["--port", "0", "--tls-port", str(self.port), "--tls-cert-file", str(cert),
                "--tls-key-file", str(key), "--tls-auth-clients", "no"]  # fmt: skip

    def start(self) -> RedisServer:
        for _attempt in range(3):
            log = (self.directory / f"redis-{self.port}.log").open("ab")
            self.process = subprocess.Popen(
                ["redis-server", *self.listen(), "--bind", "127.0.0.1", "--save", "",
                 "--appendonly", "no", "--daemonize", "no", "--dir", str(self.directory), *self.args],
                stdout=log,
                stderr=subprocess.STDOUT,
            )  # fmt: skip
            log.close()
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and self.process.poll() is None:
                try:
                    with self.client() as probe:
                        probe.ping()
                    return self
                except redis.RedisError:
                    time.sleep(0.02)
            self.stop()
            self.port = free_port()  # taken meanwhile, most likely: try another
        raise RuntimeError(f"redis-server did not start; see {self.directory}")

    def client(self, **kwargs: Any) -> redis.Redis:
        password = dict(zip(self.args[::2], self.args[1::2], strict=False)).get("--requirepass")
        if self.tls is not None:
            kwargs.update(ssl=True, ssl_ca_certs=str(self.tls[0]))
        return redis.Redis(host="127.0.0.1", port=self.port, password=password, socket_timeout=2, **kwargs)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)
        self.process = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def target(self, **fields: Any) -> Target:
        return make_target(connection={"host": "127.0.0.1", "port": self.port}, **fields)

    def wait_for(self, condition: Callable[[dict[str, Any]], bool], what: str) -> None:
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            with self.client() as probe:
                if condition(probe.info()):
                    return
            time.sleep(0.05)
        raise AssertionError(f"redis on {self.port}: {what} did not happen within 15s")


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[Callable[..., RedisServer]]:
    """Start redis-server processes on free ports; all are killed at teardown."""
    started: list[RedisServer] = []

    def start(*args: str, tls: tuple[Path, Path] | None = None) -> RedisServer:
        directory = tmp_path / f"redis{len(started)}"
        directory.mkdir()
        server = RedisServer(directory, *args, tls=tls)
        started.append(server)
        return server.start()

    yield start
    for server in started:
        server.stop()
