"""Shared fixtures: real stores (SQLite and PostgreSQL), an injected clock, plans on disk.

PostgreSQL is required: when it is unreachable the tests that need it fail
with the reason, they never skip (MAINTD_TEST_POSTGRES_URL points elsewhere).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import textwrap
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from maintd.clock import FakeClock
from maintd.engine import Engine
from maintd.registry import Registry
from maintd.settings import Settings
from maintd.store.db import Store, normalise_url
from maintd.store.models import Base

# The API personas' token and client fixtures (they need the test module's own ``engine`` fixture),
# the world of a real ``maintd serve`` process, and real SMTP and webhook receivers.
pytest_plugins = ["tests.personas", "tests.harness", "tests.notify_support", "tests.redis_support"]

# A Friday, one hour before the seed's daily window.
T0 = datetime(2026, 11, 27, 1, 0, tzinfo=UTC)
PG_ADMIN_URL = os.environ.get("MAINTD_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0)


@pytest.fixture(scope="session")
def registry() -> Registry:
    return Registry.default()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "maintd.db"
    store = Store(f"sqlite:///{path}")
    store.upgrade()
    store.dispose()
    return path


@pytest.fixture
def sqlite_store(tmp_path: Path, sqlite_template: Path) -> Iterator[Store]:
    path = tmp_path / "maintd.db"
    shutil.copy(sqlite_template, path)  # a migrated copy: much faster than migrating per test
    store = Store(f"sqlite:///{path}")
    yield store
    store.dispose()


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    admin_url = normalise_url(PG_ADMIN_URL)
    name = f"maintd_test_{uuid.uuid4().hex[:10]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:
        pytest.fail(f"PostgreSQL is required for these tests and is not usable at {PG_ADMIN_URL}: {exc}")
    url = admin_url.rsplit("/", 1)[0] + f"/{name}"
    store = Store(url)
    store.upgrade()
    store.dispose()
    yield url
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture
def pg_store(pg_database: str) -> Iterator[Store]:
    store = Store(pg_database)
    tables = ", ".join(t.name for t in Base.metadata.sorted_tables)
    with store.engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY"))
    yield store
    store.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest) -> Store:
    """The same test against both stores."""
    fixture = "sqlite_store" if request.param == "sqlite" else "pg_store"
    return request.getfixturevalue(fixture)  # type: ignore[no-any-return]


@pytest.fixture
def write_plan(tmp_path: Path) -> Callable[..., Path]:
    """Write YAML (dedented) into tmp_path/plan/NAME and return the plan directory."""
    plan_dir = tmp_path / "plan"
    plan_dir.mkdir(exist_ok=True)

    def write(text_: str, name: str = "plan.yaml") -> Path:
        (plan_dir / name).write_text(textwrap.dedent(text_).lstrip())
        return plan_dir

    return write


@pytest.fixture
def make_engine(clock: FakeClock, registry: Registry) -> Callable[..., Engine]:
    def make(store: Store, plan_dir: Path, **settings: Any) -> Engine:
        return Engine(
            Settings(database_url=store.url, plan_path=plan_dir, **settings),
            store=store,
            registry=registry,
            clock=clock,
        )

    return make


def run(coro: Any) -> Any:
    """Run a coroutine to completion in a fresh event loop (tests stay plain functions)."""
    return asyncio.run(coro)
