"""A full disk under a running maintd: SQLite on a real, small tmpfs, and PostgreSQL with a
database whose tablespace is on one.

While nothing can be written: alerts are refused with a 503 that says why (the sender repeats
them), reads keep answering, the CLI says what is wrong in one line, and a run that ends keeps
its result in memory. Once there is room again, the result is recorded and alerts go in.
"""

from __future__ import annotations

import contextlib
import errno
import os
import pwd
import subprocess
import tempfile
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from maintd.store.db import Store
from tests.harness import T0, Harness, Server, call, cli, http_get
from tests.postgres_support import clusters
from tests.test_intake import running

DISK = "8m"  # room for the migrated database and its WAL, and little more
PG_DISK = "32m"  # room for the schema's files (the WAL stays on the server's own disk)
MOST_ALERTS = 500  # a bound on the alerts it takes to meet the full disk (tens, measured)


@contextlib.contextmanager
def tmpfs(where: Path, size: str, *options: str) -> Iterator[Path]:
    """A tmpfs of ``size`` mounted on ``where`` (CI runs as root: mount needs CAP_SYS_ADMIN)."""
    mount = ["mount", "-t", "tmpfs", "-o", ",".join([f"size={size}", *options]), "tmpfs", str(where)]
    mounted = subprocess.run(mount, capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.fail(f"this test mounts a {size} tmpfs and needs root for it: {mounted.stderr.strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "--lazy", str(where)], check=True)


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    disk = tmp_path / "disk"
    disk.mkdir()
    with tmpfs(disk, DISK, "mode=0700"):
        yield disk


@pytest.fixture
def world_on_small_disk(small_disk: Path, tmp_path: Path) -> Iterator[Harness]:
    store = Store(f"sqlite:///{small_disk / 'maintd.db'}")
    harness = Harness(store, tmp_path)
    try:
        yield harness
    finally:
        harness.cleanup()
        store.dispose()


def fill(disk: Path) -> Path:
    """Write zeros until the filesystem refuses the next byte."""
    filler = disk / "filler"
    with open(filler, "wb", buffering=0) as out:
        for chunk in (1 << 16, 1 << 12, 1):
            try:
                while True:
                    out.write(bytes(chunk))
            except OSError as exc:
                assert exc.errno == errno.ENOSPC, exc
    return filler


def an_alert(n: int) -> list[dict[str, Any]]:
    # Large enough that the database must grow soon: its WAL reuses the room it already has.
    return [{"labels": {"alertname": f"Fill{n}", "target": "local"}, "summary": "x" * 1000}]


def refused_ready(server: Server) -> tuple[int, Any] | None:
    status, body = http_get(server.url + "/readyz")
    return (status, body) if status != 200 else None


def senders(h: Harness) -> tuple[str, str]:
    """An integration key to send alerts with, and a viewer's token never used yet."""
    key = made("integration", "create", "--name", "prometheus", "--kind", "native", env=h.env)
    return key, made("token", "create", "--name", "ops", "--role", "viewer", env=h.env)


def opened(alerts: str, key: str) -> int:
    status, _, answer = call(alerts, key, an_alert(0))
    assert status == 200 and answer["alerts"][0]["outcome"] == "created", answer
    return int(answer["alerts"][0]["incident_id"])


def first_refusal(alerts: str, key: str) -> str:
    """Alerts sent until one is refused (rows fit in room the database has until it must grow):
    that one's 503 detail."""
    for n in range(1, MOST_ALERTS):
        status, headers, answer = call(alerts, key, an_alert(n))
        if status != 200:
            break
    assert (status, headers.get("retry-after")) == (503, "5"), answer
    return str(answer["detail"])


@contextlib.contextmanager
def serving_nothing(url: str, tmp_path: Path) -> Iterator[tuple[Harness, Server]]:
    """``maintd serve`` with an empty plan on the database at ``url``, ready."""
    store = Store(url)
    h = Harness(store, tmp_path)
    try:
        h.write_plan("targets: []\ntasks: []\n")
        server = h.serve()
        h.wait_ready(server)
        yield h, server
    finally:
        h.cleanup()
        store.dispose()


def made(*args: str, env: dict[str, str]) -> str:
    done = cli(*args, env=env)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip().splitlines()[-1]


def test_a_full_disk_refuses_writes_clearly_keeps_serving_reads_and_loses_no_result(
    world_on_small_disk: Harness, small_disk: Path
) -> None:
    h = world_on_small_disk
    h.write_plan(
        f"""
        targets:
          - {{name: local, kind: host}}
        tasks:
          - name: tick
            kind: command
            targets: [local]
            schedule: {{every: 1h}}
            params: {{argv: {h.command("tick")}}}
        """
    )
    h.hold("tick")
    server = h.serve()
    h.wait_ready(server)
    key, token = senders(h)
    h.wait_for("tick's command to start", lambda: h.started("tick"), server)
    alerts = f"{server.url}/api/v1/alerts"
    first = opened(alerts, key)

    filler = fill(small_disk)
    assert first_refusal(alerts, key).startswith("database or disk is full; send the request again later")

    # Reads answer, with a token used for the first time (its last-use stamp cannot be written).
    status, _, incidents = call(f"{server.url}/api/v1/incidents?limit=1", token)
    assert status == 200 and [i["id"] for i in incidents] == [first]
    listed = cli("incident", "list", env=h.env)
    assert listed.returncode == 0, listed.stderr
    # A write from the CLI: one line that says what is wrong, no traceback.
    refused = cli("token", "create", "--name", "late", "--role", "viewer", env=h.env)
    assert refused.returncode == 1
    assert refused.stderr.strip() == (
        "error: the database failed during the command, which did not complete: database or disk is full"
    )

    # The scheduler cannot beat either: half a minute on, /readyz says so.
    h.set_clock(T0 + timedelta(seconds=31))
    status, body = h.wait_for("/readyz to refuse", lambda: refused_ready(server), server)
    assert status == 503 and body["checks"]["scheduler"].startswith("last heartbeat 3"), body

    # The run ends while nothing can be written: its result waits in memory.
    h.release("tick")
    h.wait_for("the result's write to fail", lambda: "recording 1 runs failed" in server.stderr(), server)
    [run] = h.runs()
    assert run.state == "running"

    filler.unlink()
    [run] = h.wait_for("the run to be recorded", lambda: h.finished("tick", 1), server)
    assert (run.status, run.stop_reason) == ("ok", None)
    h.set_clock(T0 + timedelta(seconds=40))  # the scheduler's retry waits on the injected clock
    assert h.wait_ready(server)["checks"]["scheduler"] == "ok"
    status, _, answer = call(alerts, key, an_alert(MOST_ALERTS))
    assert status == 200 and answer["alerts"][0]["outcome"] == "created"
    assert server.proc.poll() is None
    assert "Traceback" not in server.stderr()


def test_serve_on_a_full_disk_says_so_and_stops(small_disk: Path, tmp_path: Path) -> None:
    fill(small_disk)
    store = Store(f"sqlite:///{small_disk / 'maintd.db'}")
    h = Harness(store, tmp_path)
    try:
        h.write_plan("targets: []\ntasks: []\n")
        started = cli("serve", "--plan", str(h.plan_dir), env=h.env)
    finally:
        store.dispose()
    assert started.returncode == 2
    assert started.stderr.strip().splitlines()[-1] == (
        f"error: cannot open or upgrade the database {store.describe()}: database or disk is full"
    )


def test_the_intake_on_a_full_disk_answers_503_and_journals_again_once_there_is_room(
    small_disk: Path, tmp_path: Path
) -> None:
    store = Store(f"sqlite:///{small_disk / 'maintd.db'}")
    try:
        store.upgrade()
        env = {k: v for k, v in os.environ.items() if not k.startswith("MAINTD_")}
        key = made(
            "integration",
            "create",
            "--name",
            "scripts",
            "--kind",
            "native",
            env=env | {"MAINTD_DATABASE_URL": store.url},
        )
        auth = {"Authorization": f"Bearer {key}"}
        with running(store, tmp_path) as intake:
            assert intake.post("/api/v1/alerts", json=an_alert(0), headers=auth).status_code == 202
            filler = fill(small_disk)
            for n in range(1, MOST_ALERTS):
                answer = intake.post("/api/v1/alerts", json=an_alert(n), headers=auth)
                if answer.status_code != 202:
                    break
            assert answer.status_code == 503, answer.text
            assert answer.headers["retry-after"] == "5"
            assert "database or disk is full" in answer.json()["detail"]
            filler.unlink()
            assert intake.post("/api/v1/alerts", json=an_alert(MOST_ALERTS), headers=auth).status_code == 202
            assert intake.proc.poll() is None
        assert "Traceback" not in intake.stderr.read_text()
    finally:
        store.dispose()


@pytest.fixture
def pg_on_small_disk() -> Iterator[tuple[str, Path]]:
    """A database in a tablespace of its own on a small tmpfs: its data files meet the full
    disk, while the server's WAL (on its own disk) does not, as when a data volume fills up.
    On a throwaway cluster: pg_basebackup of the shared server (the DR drill tests) would meet
    the tablespace."""
    try:
        owner = pwd.getpwnam("postgres")
    except KeyError:
        pytest.fail("this test needs PostgreSQL's server user, postgres")
    where = Path(tempfile.mkdtemp(prefix="maintd-pgdisk-"))  # outside pytest's tree, which is 0700
    try:
        with (
            tmpfs(where, PG_DISK, f"uid={owner.pw_uid}", f"gid={owner.pw_gid}", "mode=0700"),
            clusters() as made,
        ):
            cluster = made.primary(max_connections=60)
            cluster.sql(f"CREATE TABLESPACE small LOCATION '{where}'")
            cluster.sql("CREATE DATABASE maintd TABLESPACE small")
            yield f"postgresql://postgres@127.0.0.1:{cluster.port}/maintd", where
    finally:
        where.rmdir()


def test_postgresql_data_files_on_a_full_disk_refuse_alerts_clearly_and_reads_go_on(
    pg_on_small_disk: tuple[str, Path], tmp_path: Path
) -> None:
    url, disk = pg_on_small_disk
    with serving_nothing(url, tmp_path) as (h, server):
        key, token = senders(h)
        alerts = f"{server.url}/api/v1/alerts"
        first = opened(alerts, key)

        filler = fill(disk)
        said = first_refusal(alerts, key)
        assert said.startswith("could not extend file"), said
        assert "No space left on device; send the request again later" in said
        status, _, incidents = call(f"{server.url}/api/v1/incidents?limit=500", token)
        assert status == 200 and first in [i["id"] for i in incidents]

        filler.unlink()
        status, _, answer = call(alerts, key, an_alert(MOST_ALERTS))
        assert status == 200 and answer["alerts"][0]["outcome"] == "created"
        assert server.proc.poll() is None
        assert "Traceback" not in server.stderr()
