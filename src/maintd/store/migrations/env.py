"""Alembic environment: run by ``Store.upgrade`` (connection passed in) or by the
alembic command line for developers (``MAINTD_DATABASE_URL``)."""

from __future__ import annotations

import os

from alembic import context
from sqlalchemy import create_engine

from maintd.store.models import Base

config = context.config
target_metadata = Base.metadata


def run() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _migrate(connection)
        return
    from maintd.store.db import normalise_url

    url = normalise_url(os.environ.get("MAINTD_DATABASE_URL", "sqlite:///maintd.db"))
    with create_engine(url).begin() as conn:
        _migrate(conn)


def _migrate(connection) -> None:  # type: ignore[no-untyped-def]
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


run()
