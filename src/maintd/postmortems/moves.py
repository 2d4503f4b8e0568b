"""The review moves of a post-mortem and who may make them: one table for the API and the dashboard."""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

from maintd.auth import Role
from maintd.postmortems import service
from maintd.postmortems.model import PostmortemState
from maintd.store.models import PostmortemRow


class Move(NamedTuple):
    call: Callable[..., PostmortemRow]
    leads_to: PostmortemState
    role: Role  # the least role that may make it
    summary: str  # the API route's
    label: str  # the dashboard button's


MOVES: dict[str, Move] = {
    "review": Move(
        service.review,
        PostmortemState.in_review,
        Role.responder,
        "Ask for a review: draft → in_review",
        "Ask for review",
    ),
    "send-back": Move(
        service.send_back,
        PostmortemState.draft,
        Role.team_lead,
        "Send back for changes: in_review → draft",
        "Send back to draft",
    ),
    "complete": Move(
        service.complete,
        PostmortemState.complete,
        Role.team_lead,
        "Complete: in_review → complete (the incident may close)",
        "Mark complete",
    ),
}
