"""A throwaway PostgreSQL primary per test, as a pytest fixture (built on ``Clusters`` next door).

    from tests.postgres_support.cluster import pg_primary  # noqa: F401  (the fixture)

    def test_x(pg_primary: Cluster): ...

Each test gets its own initdb'd cluster in a temp directory, on a free loopback port, run as
the ``postgres`` OS user when the tests run as root, with fsync off (RECIPES.md section 3);
it is stopped and removed after the test. ``scratch_dir`` gives a short directory that the
``postgres`` user owns (Unix socket paths must stay under ~107 bytes, so pytest's long
``tmp_path`` names do not fit).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.postgres_support import BIN, Cluster, Clusters, clusters, free_port, wait_for

__all__ = ["BIN", "Cluster", "Clusters", "free_port", "pg_primary", "scratch_dir", "short_dir", "wait_for"]


@pytest.fixture
def pg_primary() -> Iterator[Cluster]:
    with clusters() as made:
        yield made.primary()


def short_dir(prefix: str = "maintd-") -> Path:
    """A new directory under /tmp with a short name; the caller removes it."""
    path = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
    if os.geteuid() == 0:
        shutil.chown(path, "postgres", "postgres")
    return path


@pytest.fixture
def scratch_dir() -> Iterator[Path]:
    path = short_dir()
    yield path
    shutil.rmtree(path, ignore_errors=True)
