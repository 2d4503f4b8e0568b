"""Servers the benchmarks start for themselves: nginx, blackbox_exporter and Alertmanager.

Each runs in the foreground as a child of the benchmark, from a generated config
in a temporary directory, listening on a free port on 127.0.0.1 only, and is
stopped (SIGTERM, then SIGKILL) when its ``with`` block ends. Also: the CPU time
of a process tree, read from ``/proc/PID/stat``.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

NGINX = ("nginx", "/usr/sbin/nginx")
BLACKBOX = ("prometheus-blackbox-exporter", "blackbox_exporter")
ALERTMANAGER = ("prometheus-alertmanager", "alertmanager")
PLUGIN_DIR = "/usr/lib/nagios/plugins"
# The Debian packages these come from (`make bench` installs them; see docs/benchmarks.md).
PACKAGES = {
    "nginx": "nginx",
    "blackbox_exporter": "prometheus-blackbox-exporter",
    "alertmanager": "prometheus-alertmanager",
    "check_dummy, check_http": "monitoring-plugins-basic",
}
BODY = b"ok\n" + b"maintd probe benchmark\n" * 20  # a small static file: 463 bytes
PATH = "/probe.txt"
START_TIMEOUT = 15.0
CLK_TCK = os.sysconf("SC_CLK_TCK")
PR_SET_PDEATHSIG = 1  # prctl(2)
_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback: never a proxy


class Missing(RuntimeError):
    """A program the benchmark needs is not installed (the message names the package)."""


def find_program(names: tuple[str, ...], package: str) -> str:
    for name in names:
        found = shutil.which(name) or (name if os.path.isabs(name) and os.access(name, os.X_OK) else None)
        if found:
            return found
    raise Missing(f"{names[0]} not found: apt-get install {package}")


def free_port() -> int:
    """A TCP port nothing listens on at 127.0.0.1 now (the kernel's choice)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


# -- CPU time of processes ----------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    """utime + stime of one process so far (its threads included, its children not)."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()  # after "pid (comm) "; comm may hold spaces
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # fields 14 and 15 of proc(5)


def tree_cpu_seconds(pids: list[int]) -> float:
    total = 0.0
    for pid in pids:
        with contextlib.suppress(FileNotFoundError, ProcessLookupError):
            total += cpu_seconds(pid)
    return total


def children_of(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, ValueError, IndexError):
                stat = (entry / "stat").read_text()
                if int(stat[stat.rindex(")") + 2 :].split()[1]) == pid:
                    found.append(int(entry.name))
    return found


# -- servers ------------------------------------------------------------------------------


@dataclass
class Server:
    name: str
    port: int
    proc: subprocess.Popen[bytes]
    workdir: Path

    @property
    def pids(self) -> list[int]:
        """The process and its children (nginx: master and worker)."""
        return [self.proc.pid, *children_of(self.proc.pid)]

    def connections(self) -> tuple[int, int]:
        """nginx only: (connections accepted, requests served) so far, from its stub_status."""
        with _DIRECT.open(f"http://127.0.0.1:{self.port}/nginx_status", timeout=5) as response:
            lines = response.read().decode().splitlines()
        accepts, _handled, requests = (int(v) for v in lines[2].split())
        return accepts, requests

    def log_tail(self) -> str:
        logs = sorted(self.workdir.glob("*.log"))
        return "\n".join(p.read_text(errors="replace")[-1500:] for p in logs)


def _nginx_conf(root: Path, port: int) -> str:
    temp = "\n".join(
        f"    {what}_temp_path {root}/tmp/{what};"
        for what in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    return f"""\
daemon off;
worker_processes 1;
pid {root}/nginx.pid;
error_log {root}/error.log warn;
events {{
    worker_connections 4096;
}}
http {{
    access_log off;
    default_type text/plain;
{temp}
    keepalive_requests 1000000;
    keepalive_timeout 60s;
    server {{
        listen 127.0.0.1:{port} backlog=4096;
        root {root}/www;
        location / {{ }}
        location = /nginx_status {{ stub_status; }}
    }}
}}
"""


@contextlib.contextmanager
def nginx() -> Iterator[Server]:
    """nginx (one worker, no access log) serving ``BODY`` at ``http://127.0.0.1:PORT/probe.txt``."""
    program = find_program(NGINX, PACKAGES["nginx"])
    with tempfile.TemporaryDirectory(prefix="maintd-bench-nginx-") as tmp:
        root = Path(tmp)
        root.chmod(0o755)  # the worker runs as nobody when we are root
        (root / "www").mkdir(mode=0o755)
        (root / "www" / PATH.lstrip("/")).write_bytes(BODY)
        (root / "tmp").mkdir()
        port = free_port()
        (root / "nginx.conf").write_text(_nginx_conf(root, port))
        cmd = [program, "-p", str(root), "-e", str(root / "error.log"), "-c", str(root / "nginx.conf")]
        with _running("nginx", cmd, root, port) as server:
            wait_http(server, f"http://127.0.0.1:{port}{PATH}")
            yield server


def _blackbox_conf() -> str:
    return """\
modules:
  http_2xx:
    prober: http
    timeout: 5s
    http:
      method: GET
      preferred_ip_protocol: ip4
      ip_protocol_fallback: false
"""


@contextlib.contextmanager
def blackbox_exporter() -> Iterator[Server]:
    """blackbox_exporter with one module, ``http_2xx`` (GET, any 2xx), at ``http://127.0.0.1:PORT``."""
    program = find_program(BLACKBOX, PACKAGES["blackbox_exporter"])
    with tempfile.TemporaryDirectory(prefix="maintd-bench-blackbox-") as tmp:
        root = Path(tmp)
        (root / "blackbox.yml").write_text(_blackbox_conf())
        port = free_port()
        cmd = [
            program,
            f"--config.file={root / 'blackbox.yml'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--log.level=warn",
        ]
        with _running("blackbox_exporter", cmd, root, port) as server:
            wait_http(server, f"http://127.0.0.1:{port}/-/healthy")
            yield server


# A route to a receiver with no integrations: Alertmanager keeps the alerts in memory and sends nothing.
_ALERTMANAGER_CONF = """\
route:
  receiver: "null"
receivers:
  - name: "null"
"""


@contextlib.contextmanager
def alertmanager(config: str = _ALERTMANAGER_CONF) -> Iterator[Server]:
    """Alertmanager (default: a null receiver), no cluster, its data in a temporary directory."""
    program = find_program(ALERTMANAGER, PACKAGES["alertmanager"])
    with tempfile.TemporaryDirectory(prefix="maintd-bench-alertmanager-") as tmp:
        root = Path(tmp)
        (root / "alertmanager.yml").write_text(config)
        port = free_port()
        cmd = [
            program,
            f"--config.file={root / 'alertmanager.yml'}",
            f"--storage.path={root / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--cluster.listen-address=",
            "--log.level=warn",
        ]
        with _running("alertmanager", cmd, root, port) as server:
            wait_http(server, f"http://127.0.0.1:{port}/-/ready")
            yield server


@contextlib.contextmanager
def _running(name: str, cmd: list[str], root: Path, port: int) -> Iterator[Server]:
    with open(root / "stderr.log", "wb") as log:
        proc = subprocess.Popen(
            cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=log, cwd=root, preexec_fn=_die_with_parent
        )
    server = Server(name, port, proc, root)
    try:
        yield server
    finally:
        stop(proc)


def _die_with_parent() -> None:
    """In the child, before exec: SIGTERM when the benchmark dies, even by SIGKILL (Linux only)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)  # nginx: fast shutdown of master and workers
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def wait_http(server: Server, url: str) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        if server.proc.poll() is not None:
            raise RuntimeError(f"{server.name} exited with {server.proc.returncode}: {server.log_tail()}")
        try:
            with _DIRECT.open(url, timeout=1) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(
                f"{server.name} did not answer {url} in {START_TIMEOUT:g} s: {server.log_tail()}"
            )
        time.sleep(0.05)


def versions() -> dict[str, str]:
    """The versions of the servers and plugins the probe benchmarks use (for the machine table)."""
    found = {}
    for label, cmd in (
        ("nginx", [*NGINX[:1], "-v"]),
        ("blackbox_exporter", [*BLACKBOX[:1], "--version"]),
        ("alertmanager", [*ALERTMANAGER[:1], "--version"]),
        ("monitoring-plugins", [f"{PLUGIN_DIR}/check_http", "-V"]),
    ):
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=10, check=False)
            lines = (proc.stdout + proc.stderr).strip().splitlines()
            found[label] = lines[0].strip() if lines else "?"
        except OSError:
            found[label] = "not installed"
    return found
