"""Roles and API-token principals: the parts of maintd.auth that need no database.

``maintd intake`` checks bearer tokens with raw SQL and must not import SQLAlchemy; it and
maintd.auth share these, so a role's rank and a token's hash have one definition.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from enum import StrEnum

PREFIX = "mtd_"  # every API token starts with it; integration keys never do


class Role(StrEnum):
    """Ordered: each role may do everything the roles before it may."""

    viewer = "viewer"
    responder = "responder"
    team_lead = "team-lead"
    manager = "manager"
    director = "director"
    admin = "admin"

    @property
    def level(self) -> int:
        return _LEVELS[self]

    def allows(self, needed: Role) -> bool:
        return self.level >= needed.level


_LEVELS = {role: i for i, role in enumerate(Role)}  # every token-checked request asks


@dataclass(frozen=True)
class Principal:
    name: str
    role: Role

    @property
    def actor(self) -> str:
        return f"token:{self.name}"


def hash_token(token: str) -> str:
    """What is stored of a token or an integration key: its SHA-256, in hex."""
    return hashlib.sha256(token.encode()).hexdigest()
