"""The approval matrix: which votes fill which of a type's required approvals.

A required approval ``{role, count}`` is ``count`` slots; a vote fills one slot whose role
its person's token role allows (roles are ordered: a manager may fill a team-lead slot).
Each person fills at most one slot, whatever roles they have, so "on-call + manager" is
always two people. Filling the highest slots first, each with the lowest role that
allows it, fills as many slots as any assignment could (the roles are totally ordered).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from maintd.auth import Role
from maintd.plan.changes import Approval


@dataclass(frozen=True)
class Vote:
    person: str
    role: Role


@dataclass(frozen=True)
class Tally:
    filled: list[tuple[Role, str]]  # (slot's role, the person filling it)
    missing: list[Role]  # slots nobody fills yet, highest first

    @property
    def satisfied(self) -> bool:
        return not self.missing

    def describe_missing(self) -> list[str]:
        return [f"{role.value} x{n}" for role, n in Counter(self.missing).items()]


def slots(required: list[Approval]) -> list[Role]:
    """One role per person needed, highest first."""
    expanded = [Role(a.role) for a in required for _ in range(a.count)]
    return sorted(expanded, key=lambda r: r.level, reverse=True)


def tally(required: list[Approval], votes: list[Vote]) -> Tally:
    """Which approvals fill which slots; a person's second vote is ignored."""
    seen: set[str] = set()
    pool: list[Vote] = []
    for vote in votes:
        if vote.person not in seen:
            seen.add(vote.person)
            pool.append(vote)
    pool.sort(key=lambda v: v.role.level)
    filled: list[tuple[Role, str]] = []
    missing: list[Role] = []
    for role in slots(required):
        chosen = next((v for v in pool if v.role.allows(role)), None)
        if chosen is None:
            missing.append(role)
        else:
            pool.remove(chosen)
            filled.append((role, chosen.person))
    return Tally(filled, missing)


def may_approve(required: list[Approval], role: Role) -> bool:
    """Whether a person of ``role`` could fill any slot of ``required``."""
    return any(role.allows(needed) for needed in slots(required))
