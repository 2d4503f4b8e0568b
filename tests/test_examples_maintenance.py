"""examples/maintenance end to end on this machine: setup.sh against the real PostgreSQL, Redis and
files (into a directory and database of this test's own), pebble for the certificate, then every
task of the plan through the engine, once as a dry run (which must change nothing) and once for real.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest
import redis
from sqlalchemy import select

from maintd.clock import FakeClock
from maintd.engine import Engine
from maintd.plan.loader import LoadedPlan
from maintd.registry import Registry
from maintd.settings import Settings
from maintd.store.db import Store
from maintd.store.models import EventRow, RunRow
from tests.acme_support import free_port, pebble
from tests.manual_runs import run_by_hand

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "maintenance"
# What the shipped plan names, replaced by this test's own directory, database and pebble.
DEFAULT_DIR, DEFAULT_DB = "/var/tmp/maintd-example", "maintd_example"
DEFAULT_ACME, DEFAULT_HTTP_PORT = "https://127.0.0.1:14000/dir", "listen_port: 5002"
PG = "host=127.0.0.1 port=5432 user=postgres"


@dataclass
class Example:
    base: Path
    db: str
    engine: Engine
    loaded: LoadedPlan
    clock: FakeClock


@dataclass
class Outcome:
    status: str
    output: str
    changes: list[dict[str, Any]]

    @property
    def actions(self) -> frozenset[str]:
        return frozenset(change["action"] for change in self.changes)


def _setup(base: Path, db: str) -> None:
    env = {
        **os.environ,
        "MAINTD_EXAMPLE_DIR": str(base),
        "MAINTD_EXAMPLE_DB": db,
        "MAINTD": str(Path(sys.executable).with_name("maintd")),
        "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}",
    }
    for _ in range(2):  # the second run proves it idempotent: it must not fail on what exists
        done = subprocess.run(
            [str(EXAMPLE / "setup.sh")], env=env, capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 0, f"setup.sh failed ({done.returncode}): {done.stderr[-3000:]}"


def _localise(plan_dir: Path, base: Path, db: str, acme_url: str, http_port: int) -> None:
    plan_dir.mkdir()
    replacements = {
        DEFAULT_DIR: str(base),
        DEFAULT_DB: db,
        DEFAULT_ACME: acme_url,
        DEFAULT_HTTP_PORT: f"listen_port: {http_port}",
    }
    texts = {source.name: source.read_text() for source in sorted(EXAMPLE.glob("*.yaml"))}
    assert all(any(old in text for text in texts.values()) for old in replacements), "the plan changed"
    for name, text in texts.items():
        for old, new in replacements.items():
            text = text.replace(old, new)
        (plan_dir / name).write_text(text)


def _clean_up(base: Path, db: str) -> None:
    with psycopg.connect(f"{PG} dbname=postgres", autocommit=True) as conn:
        for name in (db, f"{db}_verify", f"{db}_dr"):
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        for role in (f"{db}_blue", f"{db}_green", f"{db}_app"):
            conn.execute(f'DROP ROLE IF EXISTS "{role}"')
    cache = redis.Redis(host="127.0.0.1", port=6379, db=0)
    keys = list(cache.scan_iter(match=f"{db}:*", count=500))
    if keys:
        cache.delete(*keys)
    shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="module")
def example(sqlite_template: Path) -> Iterator[Example]:
    # Under /tmp with a short name: the DR drill's copy puts its Unix socket in base/dr-drill, and
    # its server runs as postgres, which must be able to reach it (pytest's tmp dirs are 0700).
    base = Path(tempfile.mkdtemp(prefix="mx-", dir="/tmp"))
    base.chmod(0o755)
    db = f"maintd_ex_{uuid.uuid4().hex[:8]}"
    state = Path(tempfile.mkdtemp(prefix="mx-state-"))
    shutil.copy(sqlite_template, state / "maintd.db")
    store = Store(f"sqlite:///{state / 'maintd.db'}")
    try:
        _setup(base, db)
        with pebble(state / "pebble") as acme:
            shutil.copy(acme.ca_file, base / "pebble" / "ca.pem")
            _localise(state / "plan", base, db, acme.directory_url, free_port())
            clock = FakeClock(datetime.now(UTC))  # files and certificates age by the real time
            settings = Settings(database_url=store.url, plan_path=state / "plan")
            engine = Engine(settings, store=store, registry=Registry.default(), clock=clock)
            assert engine.reload().ok
            assert engine.loaded is not None
            yield Example(base, db, engine, engine.loaded, clock)
    finally:
        store.dispose()
        _clean_up(base, db)
        shutil.rmtree(state, ignore_errors=True)


def _run(example: Example, name: str, *, dry_run: bool) -> Outcome:
    task = example.loaded.plan.task(name)
    assert task is not None
    (target,) = [t.name for t in example.loaded.plan.targets_of(task)]
    order = run_by_hand(example.engine, name, target, dry_run=dry_run)
    example.clock.advance(1)  # the next run starts later, as it would
    with example.engine.store.read() as s:
        row = s.get(RunRow, order.run_id)
        assert row is not None and row.state == "finished", row and row.output
        kind = "action.planned" if dry_run else "action.applied"
        events = s.scalars(
            select(EventRow).where(EventRow.kind == kind, EventRow.subject == f"task:{name}/{target}")
        ).all()
        # A run that changed nothing writes no event.
        changes = [c for e in events if e.payload["run_id"] == order.run_id for c in e.payload["changes"]]
    return Outcome(str(row.status), row.output, changes)


def _world(example: Example) -> dict[str, Any]:
    """Everything a task of the example could change: files, tables, databases, roles, Redis."""
    files: dict[str, Any] = {}
    for path in sorted(example.base.rglob("*")):
        info = path.lstat()
        digest = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else None
        files[str(path.relative_to(example.base))] = (info.st_mode, info.st_size, info.st_mtime_ns, digest)
    db = example.db
    with psycopg.connect(f"{PG} dbname={db}") as conn:
        tables = conn.execute(
            "SELECT relname, n_live_tup, n_dead_tup, vacuum_count, analyze_count, last_vacuum, last_analyze"
            " FROM pg_stat_user_tables ORDER BY relname"
        ).fetchall()
        indexes = conn.execute(
            "SELECT indexrelid::regclass::text, pg_relation_size(indexrelid) FROM pg_index"
            " JOIN pg_class c ON c.oid = indrelid JOIN pg_namespace n ON n.oid = relnamespace"
            " WHERE nspname = 'public' ORDER BY 1"
        ).fetchall()
        rows = conn.execute("SELECT count(*), sum(hashtext(o::text)) FROM orders o").fetchone()
        databases = conn.execute(
            "SELECT datname FROM pg_database WHERE datname LIKE %s ORDER BY 1", (f"{db}%",)
        ).fetchall()
        roles = conn.execute(
            "SELECT rolname, rolcanlogin, rolpassword, rolvaliduntil::text FROM pg_authid"
            " WHERE rolname LIKE %s ORDER BY 1",
            (f"{db}%",),
        ).fetchall()
    cache = redis.Redis(host="127.0.0.1", port=6379, db=0)
    keys = sorted(cache.scan_iter(match=f"{db}:*", count=500))
    defrag = cache.config_get("activedefrag")
    return {
        "files": files,
        "tables": tables,
        "indexes": indexes,
        "rows": rows,
        "databases": databases,
        "roles": roles,
        "redis": (keys, defrag),
    }


@dataclass(frozen=True)
class Expect:
    line: str  # a line of the real run's output; {base} and {db} filled in
    applied: frozenset[str]  # the actions of the real run's action.applied event
    planned: frozenset[str]  # ... of the dry run's action.planned event
    status: str = "ok"
    again: str | None = None  # idempotent: a second real run changes nothing and says this


def expect(line: str, applied: str = "", planned: str | None = None, again: str | None = None) -> Expect:
    planned_ = applied if planned is None else planned
    return Expect(line, frozenset(applied.split()), frozenset(planned_.split()), again=again)


DRILL = "create mark dump restore drop remove report"
FAILOVER = "create mark basebackup start failover stop remove report"
EXPECTED: dict[str, Expect] = {
    # The dry run sees the dead tuples; the index bloat VACUUM uncovers is measured after it.
    "weekly-postgres-upkeep": expect(
        "vacuum public.orders: dead tuples 8000 -> 0,", "vacuum reindex", "vacuum"
    ),
    "weekly-redis-upkeep": expect("redis-upkeep redis://127.0.0.1:6379 db 0: "),
    "weekly-dependency-scan": expect(
        "  {base}/app/requirements.lock: jinja2 3.1.2 -> 3.1.3 (fixes GHSA-h5c8-rqwp-cp95)",
        "propose-update write-report",
    ),
    "weekly-rotate-db-password": expect(
        "PostgreSQL postgres@127.0.0.1:5432/{db}: rotated {db}_blue -> {db}_green",
        "set-password write retire",
        "set-password write verify retire",
        again=", within min_interval 1h: nothing to do",
    ),
    "weekly-log-retention": expect(
        "rotated 2, compressed 1 (36.0 KiB -> ",
        "mkdir rotate compress delete",
        again="rotated 0, compressed 0 (0 B -> 0 B), deleted 0 (0 B), held 1",
    ),
    "monthly-config-drift": expect("2 items as desired"),
    "monthly-security-compliance": expect(
        "0 open findings (0 new), 0 fixed; 0 critical, 0 high", "write-report"
    ),
    "monthly-dr-drill": expect("DR drill of 127.0.0.1:5432/{db} (dump): restored and verified, RTO ", DRILL),
    "monthly-verify-db-backup": expect(
        "every table's row count and checksum match the manifest", "restore drop"
    ),
    "monthly-verify-file-backup": expect(
        "manifest {base}/backups/files/MANIFEST.json: 4 files, 1.0 MiB verified (blake3)"
    ),
    "monthly-certificates": expect(
        "renewed {base}/tls/fullchain.pem through ACME ",
        "create-account-key issue write",
        "renew write",
        again="nothing due: the earliest expires in ",
    ),
    "quarterly-failover-drill": expect(
        "DR drill of 127.0.0.1:5432/{db} (basebackup, standby + failover): restored and verified, RTO ",
        FAILOVER,
    ),
    "quarterly-security-review": expect(
        "1 open findings (1 new), 0 fixed; 0 critical, 0 high", "propose-update write-report"
    ),
}


def test_the_plan_holds_the_seeds_weekly_monthly_and_quarterly_tasks_and_no_others(example: Example) -> None:
    assert sorted(t.name for t in example.loaded.plan.tasks) == sorted(EXPECTED)
    for task in example.loaded.plan.tasks:
        cadence = task.name.split("-")[0]
        assert task.schedule.cadence == cadence and task.enabled, task.name


@pytest.mark.parametrize("name", list(EXPECTED))
def test_each_task_changes_nothing_in_a_dry_run_then_does_its_work(example: Example, name: str) -> None:
    want = EXPECTED[name]  # the failover drill needs loopback replication: scripts/services.sh allows it
    before = _world(example)
    dry = _run(example, name, dry_run=True)
    assert (dry.status, dry.actions) == ("ok", want.planned), dry.output
    assert _world(example) == before, f"the dry run of {name} changed something"
    assert not [c for c in dry.changes if "{" in c["target"]], "a planned change names a placeholder"

    real = _run(example, name, dry_run=False)
    assert (real.status, real.actions) == (want.status, want.applied), real.output
    assert want.line.format(base=example.base, db=example.db) in real.output, real.output
    if not want.applied:  # a task that only observes leaves everything as it was
        assert _world(example) == before, f"{name} changed something"
    if want.again is not None:
        again = _run(example, name, dry_run=False)
        assert (again.status, again.actions) == ("ok", frozenset()), again.output
        assert want.again in again.output, again.output
