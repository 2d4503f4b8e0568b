"""Throwaway PostgreSQL clusters on loopback: a primary and streaming standbys (RECIPES.md section 3).

initdb, pg_basebackup and pg_ctl run as the ``postgres`` user when the tests run
as root (PostgreSQL refuses to run as root), from argument lists.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from tests.ports import free_port

BIN = Path(os.environ.get("MAINTD_TEST_PG_BIN", "/usr/lib/postgresql/15/bin"))
MONITOR_USER = "maintd_monitor"
"""A non-superuser with pg_monitor that must log in with a password (scram-sha-256)."""
MONITOR_PASSWORD = "correct horse battery staple"
PLAIN_USER = "maintd_plain"
"""A role without pg_monitor (trusted, no password): other sessions' details are hidden from it."""


_LOCALE = ["-E", "UTF8", "--locale=C.UTF-8"]


class ClusterError(RuntimeError):
    pass


def _as_postgres(argv: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *argv] if os.geteuid() == 0 else argv


def _run(argv: list[str], log: Path | None = None) -> None:
    done = subprocess.run(_as_postgres(argv), capture_output=True, text=True, timeout=60, cwd="/tmp")
    if done.returncode != 0:
        tail = log.read_text()[-2000:] if log is not None and log.exists() else ""
        raise ClusterError(f"{' '.join(argv)} exited {done.returncode}: {done.stderr.strip()}\n{tail}")


def wait_for(what: str, condition: Callable[[], bool], timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise ClusterError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(0.02)


@dataclass
class Cluster:
    name: str
    datadir: Path
    port: int

    @property
    def log(self) -> Path:
        return self.datadir.parent / f"{self.name}.log"

    @property
    def connection(self) -> dict[str, Any]:
        """For a target's ``connection``."""
        return {"host": "127.0.0.1", "port": self.port, "user": "postgres", "database": "postgres"}

    def connect(self, **kwargs: Any) -> psycopg.Connection[tuple[Any, ...]]:
        options: dict[str, Any] = {"autocommit": True, **kwargs}
        return psycopg.connect(
            host="127.0.0.1", port=self.port, user="postgres", dbname="postgres", **options
        )

    def sql(self, query: str | sql.Composable, *params: Any) -> list[tuple[Any, ...]]:
        with self.connect() as conn:
            cursor = conn.execute(query, params or None)
            return cursor.fetchall() if cursor.description else []

    def start(self) -> None:
        _run([str(BIN / "pg_ctl"), "-D", str(self.datadir), "-l", str(self.log), "-w", "-t", "30", "start"])

    def stop(self) -> None:
        _run([str(BIN / "pg_ctl"), "-D", str(self.datadir), "-m", "fast", "-w", "-t", "30", "stop"], self.log)

    def promote(self) -> None:
        _run([str(BIN / "pg_ctl"), "-D", str(self.datadir), "-w", "-t", "30", "promote"], self.log)

    def running(self) -> bool:
        return (self.datadir / "postmaster.pid").exists()


class Clusters:
    """Every cluster made in one scratch directory; ``close`` stops them all and removes it."""

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="maintd-pg-"))
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres", "postgres")
        self.clusters: list[Cluster] = []

    def primary(self, name: str = "primary", max_connections: int = 20) -> Cluster:
        cluster = Cluster(name, self.root / name, free_port())
        initdb = [str(BIN / "initdb"), "-D", str(cluster.datadir), "-U", "postgres"]
        _run([*initdb, "--auth=trust", "-N", *_LOCALE])  # -N: no fsync, like fsync=off below
        conf = {
            "listen_addresses": "'127.0.0.1'",
            "port": str(cluster.port),
            "unix_socket_directories": f"'{self.root}'",
            "max_connections": str(max_connections),
            "wal_level": "replica",
            "max_wal_senders": "10",
            "max_replication_slots": "10",
            "hot_standby": "on",
            "wal_receiver_status_interval": "1s",
            "fsync": "off",
            "full_page_writes": "off",
        }
        _append(cluster.datadir / "postgresql.conf", [f"{key} = {value}" for key, value in conf.items()])
        hba = cluster.datadir / "pg_hba.conf"
        # First match wins: the monitoring user must give a password, everyone else is trusted.
        rule = f"host all {MONITOR_USER} 127.0.0.1/32 scram-sha-256\n"
        hba.write_text(rule + hba.read_text())  # root keeps the file's owner
        self.clusters.append(cluster)
        cluster.start()
        create = sql.SQL("CREATE ROLE {} LOGIN PASSWORD {} IN ROLE pg_monitor")  # no parameters in DDL
        cluster.sql(create.format(sql.Identifier(MONITOR_USER), sql.Literal(MONITOR_PASSWORD)))
        cluster.sql(f"CREATE ROLE {PLAIN_USER} LOGIN")
        return cluster

    def standby(self, primary: Cluster, name: str) -> Cluster:
        """A streaming standby of ``primary`` on its own slot, started and streaming."""
        cluster = Cluster(name, self.root / name, free_port())
        primary.sql("SELECT pg_create_physical_replication_slot(%s)", name)
        source = ["-D", str(cluster.datadir), "-R", "-X", "stream", "-S", name, "-c", "fast", "--no-sync"]
        _run(
            [
                str(BIN / "pg_basebackup"),
                "-h",
                "127.0.0.1",
                "-p",
                str(primary.port),
                "-U",
                "postgres",
                *source,
            ]
        )
        # The WAL receiver's application_name defaults to cluster_name.
        _append(cluster.datadir / "postgresql.conf", [f"port = {cluster.port}", f"cluster_name = '{name}'"])
        self.clusters.append(cluster)
        cluster.start()
        wait_for(f"{name} to stream from {primary.name}", lambda: streaming(primary, name))
        return cluster

    def close(self) -> None:
        for cluster in reversed(self.clusters):
            if cluster.running():
                with contextlib.suppress(ClusterError, subprocess.TimeoutExpired):
                    cluster.stop()
        shutil.rmtree(self.root, ignore_errors=True)


def streaming(primary: Cluster, name: str) -> bool:
    rows = primary.sql(
        "SELECT 1 FROM pg_stat_replication WHERE application_name = %s AND state = 'streaming'", name
    )
    return bool(rows)


def _append(path: Path, lines: list[str]) -> None:
    with path.open("a") as conf:
        conf.write("\n" + "\n".join(lines) + "\n")


@contextlib.contextmanager
def clusters() -> Iterator[Clusters]:
    made = Clusters()
    try:
        yield made
    finally:
        made.close()
