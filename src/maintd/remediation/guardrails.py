"""The guardrails: whether a playbook may act on a target now, as a pure function.

``decide(playbook, situation, now)`` reads nothing and changes nothing: the caller
gathers the situation (recent executions, busy targets, unhealthy count, breaker) and
records the decision. The checks run in a fixed order and the first that says no
gives the reason; the blast radius is checked by the action itself, on the objects
its selector finds (``base.limit_blast``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from maintd.plan.playbooks import Approval, Playbook


class Verdict(StrEnum):
    executed = "executed"
    suppressed = "suppressed"
    needs_approval = "needs_approval"


class State(StrEnum):
    """A remediation row's state."""

    suppressed = "suppressed"
    awaiting_approval = "awaiting_approval"
    denied = "denied"
    queued = "queued"
    running = "running"
    succeeded = "succeeded"
    failed = "failed"


# Decisions that went (or will go) ahead: they count for cooldowns and the rate limit.
EXECUTED = frozenset({State.queued, State.running, State.succeeded, State.failed})
# Decisions still to finish: another on the same target waits (one execution per target at a time).
BUSY = frozenset({State.awaiting_approval, State.queued, State.running})


@dataclass(frozen=True)
class Past:
    """An earlier decision of the same playbook."""

    target: str
    state: State
    at: datetime


@dataclass(frozen=True)
class Situation:
    target: str
    destructive: bool
    recent: list[Past] = field(default_factory=list)  # this playbook's, newest first
    busy_targets: frozenset[str] = frozenset()  # targets with a waiting or running execution
    unhealthy: int = 1  # distinct targets with firing alerts this playbook matches (this one included)
    breaker_opened_at: datetime | None = None
    failures: int = 0  # failed executions in a row


@dataclass(frozen=True)
class Decision:
    verdict: Verdict
    reason: str
    dry_run: bool = False


def decide(playbook: Playbook, situation: Situation, now: datetime) -> Decision:
    """Executed, suppressed or needs approval, and why."""
    rails = playbook.guardrails
    target = situation.target
    no = Verdict.suppressed
    if not playbook.enabled:
        return Decision(no, f"playbook {playbook.name} is disabled in the plan")
    if situation.breaker_opened_at is not None:
        return Decision(
            no,
            f"circuit breaker open since {_at(situation.breaker_opened_at)} after {situation.failures} "
            f"failed executions in a row (reset: maintd remediation breaker reset {playbook.name})",
        )
    if target in situation.busy_targets:
        return Decision(no, f"an execution on {target} is already waiting or running (one at a time)")
    if situation.unhealthy > rails.max_unhealthy:
        return Decision(
            no,
            f"{situation.unhealthy} targets are unhealthy, more than max_unhealthy {rails.max_unhealthy}: "
            "a wider problem than this target's, left to a human",
        )
    executed = [p for p in situation.recent if p.state in EXECUTED]
    last = next((p for p in executed if p.target == target and now - p.at < rails.cooldown), None)
    if last is not None:
        return Decision(
            no,
            f"cooldown: {target} was remediated at {_at(last.at)}; "
            f"next allowed at {_at(last.at + rails.cooldown)}",
        )
    in_window = [p for p in executed if now - p.at < rails.window]
    if len(in_window) >= rails.max_executions:
        return Decision(
            no,
            f"rate limit: {len(in_window)} executions in the last {rails.window}, "
            f"at most {rails.max_executions}",
        )
    if rails.dry_run:
        return Decision(Verdict.executed, "dry run: records what would run, changes nothing", dry_run=True)
    if rails.approval is Approval.always or (rails.approval is Approval.auto and situation.destructive):
        why = (
            "the playbook requires approval"
            if rails.approval is Approval.always
            else (f"{playbook.action_kind} is destructive")
        )
        return Decision(Verdict.needs_approval, f"{why}: a responder approves or denies it")
    return Decision(Verdict.executed, "every guardrail passed")


def _at(when: datetime) -> str:
    return when.isoformat(timespec="seconds")
