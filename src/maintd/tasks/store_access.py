"""How a task kind that reports on maintd's own records reaches them: the database URL (the
kind's ``database`` param, else the process's settings) and a read-only session in a thread.

Shared by capacity-review and report, so both find the same database and say it the same way
(the password hidden).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from maintd.settings import Settings
from maintd.store.db import Store

T = TypeVar("T")


def database_url(configured: str | None) -> tuple[str, str]:
    """The URL to read from and how to show it (password hidden)."""
    url = configured or Settings.from_env().database_url
    return url, make_url(url).render_as_string(hide_password=True)


def read(url: str, work: Callable[[Session], T]) -> T:
    """``work`` on a read session of the store at ``url``; the engine is disposed after.

    Blocking: call it through ``asyncio.to_thread``. Raises StoreError or SQLAlchemyError when
    the database cannot be read.
    """
    store = Store(url)
    try:
        with store.read() as session:
            return work(session)
    finally:
        store.dispose()
