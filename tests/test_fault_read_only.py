"""PostgreSQL turned read-only under a running maintd: a failover that left maintd on a hot
standby, or `default_transaction_read_only` set for maintenance. Writes are refused with a 503
that says so, reads go on, and once the database takes writes again everything does."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from maintd.store.db import Store, normalise_url
from tests.conftest import PG_ADMIN_URL
from tests.harness import call, cli
from tests.test_fault_full_disk import an_alert, opened, senders, serving_nothing

READ_ONLY = r"cannot execute \S+ in a read-only transaction"  # INSERT, nextval(), ...


@pytest.fixture
def database() -> Iterator[tuple[str, Any]]:
    """A migrated database of its own (its settings change), and an admin engine."""
    admin = create_engine(normalise_url(PG_ADMIN_URL), isolation_level="AUTOCOMMIT")
    name = f"maintd_ro_{uuid.uuid4().hex[:10]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = normalise_url(PG_ADMIN_URL).rsplit("/", 1)[0] + f"/{name}"
    try:
        store = Store(url)
        store.upgrade()
        store.dispose()
        yield url, admin
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def read_only(admin: Any, url: str, on: bool) -> None:
    """Set the database read-only (or not) for new sessions, and end the sessions it has: as a
    failover to a standby would, the pool's next connection is a new one."""
    name = url.rsplit("/", 1)[1]
    change = "SET default_transaction_read_only = on" if on else "RESET default_transaction_read_only"
    with admin.connect() as conn:
        conn.execute(text(f'ALTER DATABASE "{name}" {change}'))
        conn.execute(
            text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :n"), {"n": name}
        )


def test_a_database_turned_read_only_refuses_writes_with_a_503_and_reads_go_on(
    database: tuple[str, Any], tmp_path: Any
) -> None:
    url, admin = database
    with serving_nothing(url, tmp_path) as (h, server):
        key, token = senders(h)
        alerts = f"{server.url}/api/v1/alerts"
        first = opened(alerts, key)

        read_only(admin, url, True)
        status, headers, answer = call(alerts, key, an_alert(1))
        assert (status, headers["retry-after"]) == (503, "5"), answer
        assert re.fullmatch(
            READ_ONLY + "; send the request again later \\(a repeat is harmless\\)", answer["detail"]
        )
        status, _, incidents = call(f"{server.url}/api/v1/incidents", token)
        assert status == 200 and [i["id"] for i in incidents] == [first]
        refused = cli("token", "create", "--name", "late", "--role", "viewer", env=h.env)
        assert refused.returncode == 1
        said = "error: the database failed during the command, which did not complete: "
        assert re.fullmatch(re.escape(said) + READ_ONLY, refused.stderr.strip()), refused.stderr

        read_only(admin, url, False)
        status, _, answer = call(alerts, key, an_alert(2))
        assert status == 200 and answer["alerts"][0]["outcome"] == "created"
        assert server.proc.poll() is None
        assert "Traceback" not in server.stderr()
