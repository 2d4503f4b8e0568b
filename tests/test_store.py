"""The store on both databases: migrations, drift between models and migrations, the event log."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect

from maintd.intake.database import sqlite_path
from maintd.store import events as event_log
from maintd.store.db import Store, StoreError, alembic_config, head_revision, normalise_url
from maintd.store.events import Event
from maintd.store.models import Base
from tests.conftest import T0


def test_migrations_create_every_table_and_are_idempotent(store: Store):
    store.upgrade()  # already at head: nothing to do, no error
    assert store.current_revision() == ScriptDirectory.from_config(alembic_config()).get_current_head()
    tables = set(inspect(store.engine).get_table_names())
    assert {t.name for t in Base.metadata.sorted_tables} <= tables


def test_a_store_at_the_head_is_opened_without_importing_alembic(sqlite_store: Store):
    assert head_revision() == ScriptDirectory.from_config(alembic_config()).get_current_head()
    probe = (
        "import sys; from maintd.store.db import Store; "
        f"Store({sqlite_store.url!r}).upgrade(); print('alembic' in sys.modules)"
    )
    found = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert found.stdout.strip() == "False", found.stderr


def test_a_new_database_is_migrated_apart_and_alembic_never_enters_the_process(tmp_path):
    url = f"sqlite:///{tmp_path}/new.db"
    probe = (
        "import sys; from maintd.store.db import Store; "
        f"s = Store({url!r}); s.upgrade_apart(); print(s.current_revision(), 'alembic' in sys.modules)"
    )
    found = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert found.stdout.split() == [head_revision(), "False"], found.stderr
    assert set(inspect(Store(url).engine).get_table_names()) >= {t.name for t in Base.metadata.sorted_tables}


def test_a_migration_that_fails_apart_says_why(tmp_path):
    store = Store(f"sqlite:///{tmp_path}/odd.db")
    with store.engine.begin() as conn:  # a revision no migration knows: from a newer maintd, say
        conn.exec_driver_sql("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL)")
        conn.exec_driver_sql("INSERT INTO alembic_version VALUES ('f00dfeed')")
    said = r"^cannot open or upgrade the database sqlite:///.*odd\.db: .*f00dfeed"
    with pytest.raises(StoreError, match=said):
        store.upgrade_apart()


def test_the_models_and_the_migrations_agree(store: Store):
    with store.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": False})
        diff = compare_metadata(context, Base.metadata)
    assert diff == [], f"models differ from migrations; write a migration: {diff}"


def test_a_fresh_sqlite_file_is_created_with_its_directory(tmp_path):
    store = Store(f"sqlite:///{tmp_path}/deep/er/maintd.db")
    store.upgrade()
    assert (tmp_path / "deep" / "er" / "maintd.db").exists()
    with store.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"


def test_postgres_urls_are_read_as_psycopg3():
    assert normalise_url("postgres://u@h/db") == "postgresql+psycopg://u@h/db"
    assert normalise_url("postgresql://u@h/db") == "postgresql+psycopg://u@h/db"
    assert normalise_url("sqlite:///x.db") == "sqlite:///x.db"


def test_describe_hides_the_password():
    assert "secret" not in Store("postgresql://u:secret@127.0.0.1:1/db").describe()


def test_events_come_back_in_order_and_filter_by_kind_prefix_and_subject(store: Store):
    with store.write() as s:
        event_log.append(
            s,
            [
                Event("run.overrun", "task:a/x", T0, "runner", {"n": 1}),
                Event("plan.loaded", "plan", T0, "system"),
                Event("run.timeout", "task:b/y", T0, "runner", {"n": 2}),
            ],
        )
    with store.read() as s:
        everything = event_log.query(s)
        runs = event_log.query(s, kind="run.")
        glob = event_log.query(s, kind="run*")
        exact = event_log.query(s, kind="plan.loaded")
        one = event_log.query(s, subject="task:b/y")
        after = event_log.query(s, after_id=everything[0].id)
        newest = event_log.query(s, newest_first=True, limit=1)
    assert [e.kind for e in everything] == ["run.overrun", "plan.loaded", "run.timeout"]
    assert [e.kind for e in runs] == [e.kind for e in glob] == ["run.overrun", "run.timeout"]
    assert [e.subject for e in exact] == ["plan"]
    assert [e.payload for e in one] == [{"n": 2}]
    assert len(after) == 2
    assert newest[0].kind == "run.timeout"
    assert everything[0].at == T0


@pytest.mark.parametrize(
    ("url", "named"),
    [
        ("mysql://app:s3cret@db/app", "(mysql)"),
        ("postgresql+psycopg2://app:s3cret@db/app", "(postgresql+psycopg2)"),
        ("sqlite+aiosqlite:///x.db", "(sqlite+aiosqlite)"),
        ("s3cret", "(no scheme)"),
        ("app:s3cret@db", "(app)"),  # a user name is not a secret
    ],
)
def test_a_database_url_maintd_cannot_use_is_refused_naming_its_scheme_not_its_password(
    url: str, named: str
) -> None:
    with pytest.raises(StoreError) as refused:
        Store(url)
    assert str(refused.value) == (
        f"unsupported database URL {named}: use sqlite:///PATH or postgresql://USER@HOST:PORT/DATABASE"
    )


def test_a_sqlite_folder_that_cannot_be_made_is_a_store_error_naming_it(tmp_path):
    (tmp_path / "taken").write_text("a file, not a folder")
    said = r"^cannot make the folder .*/taken/state for the database: Not a directory$"
    with pytest.raises(StoreError, match=said):
        Store(f"sqlite:///{tmp_path}/taken/state/maintd.db")


def test_a_sqlite_url_under_the_home_directory_is_the_same_file_for_serve_and_the_intake(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    url = "sqlite:///~/state/maintd.db"
    store = Store(url)
    try:
        store.upgrade()
    finally:
        store.dispose()
    assert (tmp_path / "state" / "maintd.db").is_file()
    assert not Path("~").exists()  # not a directory named ~ in the working directory
    assert sqlite_path(url) == str(tmp_path / "state" / "maintd.db")
