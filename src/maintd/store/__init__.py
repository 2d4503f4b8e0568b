"""Storage: tables, sessions, migrations."""

from __future__ import annotations

from maintd.store.db import Store, StoreError

__all__ = ["Store", "StoreError"]
