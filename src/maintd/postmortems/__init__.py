"""Blameless post-mortems: drafted when a P0/P1 incident resolves, reviewed, completed; action items
with owners and due dates, reminded through the notifiers until done."""

from __future__ import annotations

from maintd.postmortems.model import (
    ActionStatus,
    ActionView,
    PostmortemEdit,
    PostmortemError,
    PostmortemNotFound,
    PostmortemState,
    PostmortemView,
)

__all__ = [
    "ActionStatus",
    "ActionView",
    "PostmortemEdit",
    "PostmortemError",
    "PostmortemNotFound",
    "PostmortemState",
    "PostmortemView",
]
