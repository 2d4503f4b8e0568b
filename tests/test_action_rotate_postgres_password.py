"""rotate-postgres-password on a throwaway PostgreSQL that checks passwords (scram-sha-256).

The machine's own server trusts every loopback login, where a password proves nothing, so these
tests run on their own cluster (tests/postgres_support) whose pg_hba asks the app roles for a
password. Each test has its own database and roles (uuid suffix), dropped afterwards. The
consumer is a real process that reads the secret file and reconnects on SIGHUP.
"""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from maintd.checks.base import CheckResult, Status
from maintd.clock import FakeClock
from tests.conftest import run
from tests.kinds import make_target, run_kind
from tests.postgres_support import Cluster, clusters, free_port, wait_for

CONSUMER = r"""
import os, signal, sys, psycopg
secret, status, port, db = sys.argv[1:5]
signal.signal(signal.SIGHUP, lambda *_: None)

def connect():
    pairs = (line.split("=", 1) for line in open(secret).read().splitlines() if "=" in line)
    env = dict(pairs)
    conn = psycopg.connect(host="127.0.0.1", port=port, dbname=db, user=env["PGUSER"],
                           password=env["PGPASSWORD"], autocommit=True)
    who = conn.execute("SELECT current_user || ' ' || count(*) FROM items").fetchone()[0]
    with open(status + ".tmp", "w") as f:
        f.write(who)
    os.replace(status + ".tmp", status)
    return conn

conn = connect()
while True:
    signal.pause()  # SIGHUP: re-read the file, connect anew, then let the old session go
    try:
        new = connect()
    except psycopg.Error as exc:
        with open(status + ".tmp", "w") as f:
            f.write("error " + str(exc))
        os.replace(status + ".tmp", status)
        continue
    conn.close()
    conn = new
"""


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    with clusters() as made:
        primary = made.primary("rotation")
        hba = primary.datadir / "pg_hba.conf"
        rules = "host all postgres 127.0.0.1/32 trust\nhost all all 127.0.0.1/32 scram-sha-256\n"
        hba.write_text(rules + hba.read_text())
        primary.sql("CREATE ROLE maintd_probe LOGIN")
        primary.sql("SELECT pg_reload_conf()")
        wait_for("pg_hba.conf to ask for passwords", lambda: not logs_in(primary, "maintd_probe", None))
        yield primary


def logs_in(cluster: Cluster, user: str, password: str | None, db: str = "postgres") -> bool:
    try:
        with psycopg.connect(
            host="127.0.0.1", port=cluster.port, user=user, password=password, dbname=db, connect_timeout=5
        ):
            return True
    except psycopg.OperationalError:
        return False


@dataclass
class App:
    cluster: Cluster
    db: str
    group: str
    blue: str
    green: str
    secret: Path
    blue_password: str = "blue's first password"

    def params(self, **extra: Any) -> dict[str, Any]:
        return {
            "roles": [self.blue, self.green],
            "group_role": self.group,
            "secret_file": str(self.secret),
            "verify_database": self.db,
            **extra,
        }

    def file(self) -> dict[str, str]:
        return dict(line.split("=", 1) for line in self.secret.read_text().splitlines())

    def role(self, name: str) -> tuple[bool, bool]:
        """(can log in, has a password)"""
        ((login, password),) = self.cluster.sql(
            "SELECT rolcanlogin, rolpassword IS NOT NULL FROM pg_authid WHERE rolname = %s", name
        )
        return bool(login), bool(password)


@pytest.fixture
def app(cluster: Cluster, tmp_path: Path) -> Iterator[App]:
    suffix = uuid.uuid4().hex[:8]
    made = App(
        cluster,
        f"app_{suffix}",
        f"app_{suffix}",
        f"app_blue_{suffix}",
        f"app_green_{suffix}",
        tmp_path / "app.env",
    )
    ident = sql.Identifier
    cluster.sql(sql.SQL("CREATE ROLE {} NOLOGIN").format(ident(made.group)))
    cluster.sql(
        sql.SQL("CREATE ROLE {} LOGIN PASSWORD {} IN ROLE {}").format(
            ident(made.blue), sql.Literal(made.blue_password), ident(made.group)
        )
    )
    cluster.sql(sql.SQL("CREATE ROLE {} NOLOGIN IN ROLE {}").format(ident(made.green), ident(made.group)))
    cluster.sql(sql.SQL("CREATE DATABASE {} OWNER {}").format(ident(made.db), ident(made.group)))
    with psycopg.connect(
        host="127.0.0.1", port=cluster.port, user="postgres", dbname=made.db, autocommit=True
    ) as c:
        c.execute(sql.SQL("SET ROLE {}").format(ident(made.group)))
        c.execute("CREATE TABLE items (id int); INSERT INTO items VALUES (1), (2)")
    made.secret.write_text(f"PGHOST=127.0.0.1\nPGUSER={made.blue}\nPGPASSWORD={made.blue_password}\n")
    made.secret.chmod(0o600)
    yield made
    cluster.sql(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(ident(made.db)))
    for role in (made.blue, made.green, made.group):
        cluster.sql(sql.SQL("DROP ROLE IF EXISTS {}").format(ident(role)))


def rotate(
    app: App,
    *,
    dry_run: bool = False,
    port: int | None = None,
    memo: dict[str, Any] | None = None,
    **params: Any,
) -> CheckResult:
    connection = {
        "host": "127.0.0.1",
        "port": port or app.cluster.port,
        "user": "postgres",
        "database": "postgres",
    }
    target = make_target(kind="database", connection=connection)
    result: CheckResult = run(
        run_kind(
            "rotate-postgres-password",
            app.params(**params),
            target,
            dry_run=dry_run,
            memo=memo,
            clock=FakeClock(datetime.now(UTC)),
        )
    )
    return result


@pytest.fixture
def consumer(app: App, tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], Path]]:
    status = tmp_path / "consumer.status"
    proc = subprocess.Popen(
        [sys.executable, "-c", CONSUMER, str(app.secret), str(status), str(app.cluster.port), app.db]
    )
    try:
        wait_for("the consumer's first connection", lambda: status.exists())
        yield proc, status
    finally:
        proc.kill()
        proc.wait(timeout=10)


def secret_anywhere(result: CheckResult, password: str) -> bool:
    recorded = json.dumps([c.as_json() for c in result.changes]) + json.dumps(result.metrics)
    return password in result.output or password in recorded or password in json.dumps(result.memo)


def test_a_consumer_reconnects_with_the_new_password_and_the_old_one_is_retired(app: App, consumer: Any):
    proc, status = consumer
    assert status.read_text() == f"{app.blue} 2"
    result = rotate(app, reload_command=["kill", "-HUP", str(proc.pid)], drain_timeout="10s")
    assert result.status is Status.ok, result.output
    password = app.file()["PGPASSWORD"]
    assert result.output.splitlines() == [
        f"PostgreSQL postgres@127.0.0.1:{app.cluster.port}/postgres: rotated {app.blue} -> {app.green}",
        f"set a new password on {app.green} (scram-sha-256); it logs in",
        f"wrote {app.secret} naming {app.green} (mode 0600)",
        f"reload hook ['kill', '-HUP', '{proc.pid}']: exit 0",
        f"the secret file's credentials log in as {app.green}",
        result.output.splitlines()[5],
        f"retired {app.blue} (NOLOGIN, PASSWORD NULL)",
    ]
    assert result.output.splitlines()[5].startswith(f"no session of {app.blue} left after ")
    assert (
        status.read_text() == f"{app.green} 2"
    )  # the consumer's new session, through the group's privileges
    assert app.file() == {"PGHOST": "127.0.0.1", "PGUSER": app.green, "PGPASSWORD": password}
    assert (app.secret.stat().st_mode & 0o777) == 0o600
    assert logs_in(app.cluster, app.green, password, app.db)
    assert not logs_in(app.cluster, app.blue, app.blue_password, app.db)
    assert app.role(app.blue) == (False, False)
    assert [c.action for c in result.changes] == ["set-password", "write", "reload", "retire"]
    assert not secret_anywhere(result, password) and len(password) >= 40
    assert result.metrics == {"rotated": 1.0, "retired": 1.0, "old_sessions": 0.0}

    again = rotate(app, memo=result.memo)  # a retry within min_interval
    assert (
        again.output.splitlines()[1].endswith("within min_interval 1h: nothing to do") and not again.changes
    )

    back = rotate(app, min_interval=None, reload_command=["kill", "-HUP", str(proc.pid)], drain_timeout="10s")
    assert back.status is Status.ok, back.output
    assert back.output.splitlines()[0].endswith(f"rotated {app.green} -> {app.blue}")
    wait_for("the consumer back on blue", lambda: status.read_text() == f"{app.blue} 2")
    assert not logs_in(app.cluster, app.green, password, app.db)
    assert logs_in(app.cluster, app.blue, app.file()["PGPASSWORD"], app.db)


def test_a_failing_reload_hook_leaves_the_old_credential_working(app: App):
    hook = [sys.executable, "-c", "print('app.service not found'); raise SystemExit(3)"]
    result = rotate(app, reload_command=hook)
    assert result.status is Status.critical
    assert result.output.splitlines()[-1] == (
        f"reload hook {hook} failed (exit 3): app.service not found; {app.blue} still logs in"
    )
    assert logs_in(app.cluster, app.blue, app.blue_password, app.db)  # nobody is locked out
    assert logs_in(app.cluster, app.green, app.file()["PGPASSWORD"], app.db)  # and the file's works too
    assert "retire" not in [c.action for c in result.changes]
    assert result.memo is not None and result.memo["retire_pending"] == app.blue


def test_a_dry_run_says_what_it_would_do_and_changes_nothing(app: App):
    before = app.secret.read_text()
    result = rotate(app, dry_run=True, reload_command=["true"], drain_timeout="1m")
    assert result.status is Status.ok, result.output
    assert result.output.splitlines()[1:] == [
        f"dry run: would set a new password on {app.green} (LOGIN, scram-sha-256)",
        f"dry run: would write {app.secret} naming {app.green} (mode 0600)",
        "dry run: would run the reload hook ['true']",
        f"dry run: would verify {app.green} logs in with the file's credentials",
        f"dry run: would wait up to 1m for {app.blue}'s sessions to end",
        f"dry run: would retire {app.blue} (NOLOGIN, PASSWORD NULL)",
    ]
    assert app.secret.read_text() == before
    assert app.role(app.green) == (False, False) and app.role(app.blue) == (True, True)


def test_old_sessions_that_outlast_the_drain_keep_the_old_role_and_the_next_run_retires_it(app: App):
    with psycopg.connect(
        host="127.0.0.1", port=app.cluster.port, user=app.blue, password=app.blue_password, dbname=app.db
    ):
        result = rotate(app, drain_timeout="300ms")
        assert result.status is Status.warning, result.output
        assert result.output.splitlines()[-1] == (
            f"1 sessions of {app.blue} still open after 0.3s: {app.blue} left logging in; "
            "the next run retires it"
        )
        assert logs_in(app.cluster, app.blue, app.blue_password, app.db)
    wait_for(
        "the old session gone",
        lambda: not app.cluster.sql("SELECT 1 FROM pg_stat_activity WHERE usename = %s", app.blue),
    )
    finish = rotate(app, drain_timeout="5s", memo=result.memo)
    assert finish.status is Status.ok, finish.output
    assert finish.output.splitlines()[1] == f"finishing the last rotation: {app.blue} is still to be retired"
    assert [c.action for c in finish.changes] == ["retire"]
    assert not logs_in(app.cluster, app.blue, app.blue_password, app.db)


def test_bad_input_fails_with_the_exact_message_and_changes_nothing(app: App, tmp_path: Path):
    port = free_port()
    down = rotate(app, port=port)
    assert down.status is Status.critical
    assert down.output.startswith(f"PostgreSQL at postgres@127.0.0.1:{port}/postgres: cannot connect: ")
    missing = rotate(app, secret_file=str(tmp_path / "nowhere.env"))
    assert missing.output == f"secret file {tmp_path / 'nowhere.env'}: No such file or directory"
    stranger = rotate(app, roles=[app.green, "someone_else"])
    assert (
        stranger.output
        == f"secret file {app.secret} names role {app.blue}, not one of {app.green}, someone_else"
    )
    outsider = f"app_outsider_{uuid.uuid4().hex[:8]}"
    app.cluster.sql(sql.SQL("CREATE ROLE {} NOLOGIN").format(sql.Identifier(outsider)))
    try:
        result = rotate(app, roles=[app.blue, outsider])
    finally:
        app.cluster.sql(sql.SQL("DROP ROLE {}").format(sql.Identifier(outsider)))
    assert result.output.splitlines()[-1] == (
        f"role {outsider} is not a member of {app.group}: it would log in without the privileges"
    )
    assert all(not r.changes for r in (down, missing, stranger, result))
    assert app.file()["PGPASSWORD"] == app.blue_password and app.role(app.green) == (False, False)


def test_a_json_secret_file_keeps_its_other_keys(app: App, tmp_path: Path):
    secret = tmp_path / "app.json"
    secret.write_text(json.dumps({"host": "db1", "user": app.blue, "password": app.blue_password}))
    result = rotate(app, secret_file=str(secret), secret_format="json", retire="valid_until")
    assert result.status is Status.ok, result.output
    doc = json.loads(secret.read_text())
    assert doc["host"] == "db1" and doc["user"] == app.green
    assert logs_in(app.cluster, app.green, doc["password"], app.db)
    assert not logs_in(app.cluster, app.blue, app.blue_password, app.db)  # VALID UNTIL now
