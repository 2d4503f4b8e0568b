"""Change management: change requests with the approval matrix of their type, evidence, a change
freeze while P0/P1 incidents are open, and an execution that snapshots, pre-checks, applies
(canary first), watches health checks and rolls back by itself."""

from __future__ import annotations

from maintd.changes.model import (
    ChangeError,
    ChangeForbidden,
    ChangeFrozen,
    ChangeNotFound,
    ChangeRequest,
    ChangeState,
    ChangeView,
)

__all__ = [
    "ChangeError",
    "ChangeForbidden",
    "ChangeFrozen",
    "ChangeNotFound",
    "ChangeRequest",
    "ChangeState",
    "ChangeView",
]
