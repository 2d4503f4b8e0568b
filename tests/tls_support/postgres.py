"""A throwaway PostgreSQL cluster with ssl=on on a free loopback port (initdb + pg_ctl as postgres)."""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.tls_support.certs import Issued, write_pem

BIN = Path("/usr/lib/postgresql/15/bin")


def _as_postgres(*argv: str) -> None:
    subprocess.run(
        ["runuser", "-u", "postgres", "--", *argv], cwd="/tmp", check=True, capture_output=True, timeout=60
    )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def postgres_with_tls(chain: list[Issued]) -> Iterator[int]:
    """Start a cluster presenting ``chain``; yields its port; stops and deletes it afterwards."""
    base = Path(tempfile.mkdtemp(prefix="maintd-tls-pg-", dir="/tmp"))
    shutil.chown(base, "postgres", "postgres")
    data = base / "data"
    try:
        _as_postgres(
            str(BIN / "initdb"),
            "-D",
            str(data),
            "-U",
            "postgres",
            "--auth=trust",
            "--no-sync",
            "--no-instructions",
            "-E",
            "UTF8",
            "--locale=C.UTF-8",
        )
        write_pem(data / "server.crt", *chain)
        (data / "server.key").write_bytes(chain[0].key_pem())
        for name in ("server.crt", "server.key"):
            shutil.chown(data / name, "postgres", "postgres")
            (data / name).chmod(0o600)
        port = _free_port()
        with (data / "postgresql.conf").open("a") as conf:
            conf.write(
                f"listen_addresses = '127.0.0.1'\nport = {port}\nunix_socket_directories = '{base}'\n"
                "ssl = on\nssl_cert_file = 'server.crt'\nssl_key_file = 'server.key'\nfsync = off\n"
            )
        try:
            _as_postgres(
                str(BIN / "pg_ctl"), "-D", str(data), "-l", str(base / "log"), "-w", "-t", "30", "start"
            )
        except subprocess.CalledProcessError as exc:
            log = (base / "log").read_text() if (base / "log").exists() else ""
            raise RuntimeError(f"PostgreSQL did not start: {exc.stderr.decode()} {log}") from exc
        try:
            yield port
        finally:
            _as_postgres(str(BIN / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "-t", "30", "stop")
    finally:
        shutil.rmtree(base, ignore_errors=True)
