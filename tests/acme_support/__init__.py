"""Debian's pebble (an ACME test CA) on loopback, one per test, on free ports.

pebble ships no TLS certificate of its own: each instance gets one made here by a throwaway CA
(``ca_file`` is what a client trusts to talk to it). With ``real_http01`` pebble resolves every
name through pebble-challtestsrv's DNS (127.0.0.1) and really fetches the http-01 token from
``http_port``; otherwise ``PEBBLE_VA_ALWAYS_VALID`` accepts every challenge unchecked.
"""

from __future__ import annotations

import json
import os
import signal
import ssl
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from tests.ports import free_port
from tests.tls_support.certs import root, write_pem

DAY = timedelta(days=1)


class PebbleError(RuntimeError):
    pass


@dataclass
class Pebble:
    directory_url: str  # https://127.0.0.1:PORT/dir
    management_url: str
    ca_file: Path  # the CA of pebble's own HTTPS certificate
    http_port: int  # where pebble fetches http-01 tokens (real_http01 only)
    process: subprocess.Popen[bytes]

    def root_pem(self) -> bytes:
        """The root pebble issues under; a new one on every pebble start."""
        return self._get("/roots/0")

    def intermediate_pem(self) -> bytes:
        return self._get("/intermediates/0")

    def _get(self, path: str) -> bytes:
        context = ssl.create_default_context(cafile=str(self.ca_file))
        with urllib.request.urlopen(self.management_url + path, context=context, timeout=5) as answer:
            return bytes(answer.read())

    def stop(self) -> None:
        """Pebble keeps everything in memory: stopping it is 'the ACME server is down'."""
        _stop(self.process)


@contextmanager
def pebble(directory: Path, *, real_http01: bool = False) -> Iterator[Pebble]:
    directory.mkdir(parents=True, exist_ok=True)
    ca = root("pebble HTTPS test CA", not_after=datetime.now(UTC) + 30 * DAY)
    server = ca.issue(
        "localhost",
        dns=("localhost",),
        ips=("127.0.0.1",),
        not_before=datetime.now(UTC) - DAY,
        not_after=datetime.now(UTC) + 30 * DAY,
    )
    ca_file = write_pem(directory / "pebble-https-ca.pem", ca)
    write_pem(directory / "pebble-cert.pem", server)
    (directory / "pebble-key.pem").write_bytes(server.key_pem())
    acme_port, management_port, http_port, tls_port = (free_port() for _ in range(4))
    config = {
        "pebble": {
            "listenAddress": f"127.0.0.1:{acme_port}",
            "managementListenAddress": f"127.0.0.1:{management_port}",
            "certificate": str(directory / "pebble-cert.pem"),
            "privateKey": str(directory / "pebble-key.pem"),
            "httpPort": http_port,
            "tlsPort": tls_port,
            "ocspResponderURL": "",
            "externalAccountBindingRequired": False,
        }
    }
    (directory / "pebble-config.json").write_text(json.dumps(config))
    env = {**os.environ, "PEBBLE_VA_NOSLEEP": "1", "PEBBLE_WFE_NONCEREJECT": "0"}
    argv = ["pebble", "-config", str(directory / "pebble-config.json")]
    dns: subprocess.Popen[bytes] | None = None
    if real_http01:
        dns_port, dns_management = free_port(), free_port()
        dns = _start(
            [
                "pebble-challtestsrv",
                "-defaultIPv4", "127.0.0.1", "-defaultIPv6", "",
                "-dns01", f"127.0.0.1:{dns_port}",
                "-http01", "", "-https01", "", "-tlsalpn01", "",
                "-management", f"127.0.0.1:{dns_management}",
            ],
            directory / "challtestsrv.log",
            os.environ.copy(),
        )  # fmt: skip
        argv += ["-dnsserver", f"127.0.0.1:{dns_port}"]
    else:
        env["PEBBLE_VA_ALWAYS_VALID"] = "1"
    process = _start(argv, directory / "pebble.log", env)
    instance = Pebble(
        f"https://127.0.0.1:{acme_port}/dir",
        f"https://127.0.0.1:{management_port}",
        ca_file,
        http_port,
        process,
    )
    try:
        _wait_until_ready(instance, directory / "pebble.log")
        yield instance
    finally:
        _stop(process)
        if dns is not None:
            _stop(dns)


def _start(argv: list[str], log: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(
            argv, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=log.parent, start_new_session=True
        )


def _wait_until_ready(instance: Pebble, log: Path, timeout: float = 15) -> None:
    context = ssl.create_default_context(cafile=str(instance.ca_file))
    deadline = time.monotonic() + timeout
    while True:
        if instance.process.poll() is not None:
            raise PebbleError(f"pebble exited {instance.process.returncode}: {log.read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(instance.directory_url, context=context, timeout=1) as answer:
                if answer.status == 200:
                    return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise PebbleError(f"pebble did not answer within {timeout:g}s: {log.read_text()[-2000:]}")
        time.sleep(0.02)


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(5)
