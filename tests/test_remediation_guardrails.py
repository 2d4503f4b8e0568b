"""The guardrails as a table: (playbook, situation, now) → executed / suppressed / needs approval, and why.

Also the blast radius (``limit_blast``) and label filling (``render``), the two guardrails an
action applies itself.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from maintd.plan.playbooks import Playbook
from maintd.remediation.base import Refused, limit_blast, render
from maintd.remediation.guardrails import Past, Situation, State, Verdict, decide
from tests.conftest import T0

MIN = timedelta(minutes=1)


def playbook(**guardrails: Any) -> Playbook:
    return Playbook.model_validate(
        {
            "name": "crash",
            "alert_type": "pod_crash",
            "action": {"params": {"namespace": "prod", "pod": "${pod}"}},
            "guardrails": guardrails,
        }
    )


def past(target: str, state: State, minutes_ago: float) -> Past:
    return Past(target, state, T0 - minutes_ago * MIN)


def situation(**overrides: Any) -> Situation:
    values: dict[str, Any] = {"target": "web-1", "destructive": False}
    values.update(overrides)
    return Situation(**values)


CASES = [
    # (name, guardrails, situation, verdict, reason contains)
    ("nothing stands in the way", {}, situation(), Verdict.executed, "every guardrail passed"),
    (
        "the breaker is open",
        {},
        situation(breaker_opened_at=T0 - 5 * MIN, failures=3),
        Verdict.suppressed,
        "circuit breaker open since 2026-11-27T00:55:00+00:00 after 3 failed executions",
    ),
    (
        "the target has an execution waiting or running",
        {},
        situation(busy_targets=frozenset({"web-1"})),
        Verdict.suppressed,
        "already waiting or running (one at a time)",
    ),
    (
        "another target's execution does not hold this one",
        {},
        situation(busy_targets=frozenset({"web-2"})),
        Verdict.executed,
        "every guardrail passed",
    ),
    (
        "too many targets are unhealthy",
        {"max_unhealthy": 3},
        situation(unhealthy=4),
        Verdict.suppressed,
        "4 targets are unhealthy, more than max_unhealthy 3",
    ),
    (
        "as many unhealthy as allowed",
        {"max_unhealthy": 3},
        situation(unhealthy=3),
        Verdict.executed,
        "passed",
    ),
    (
        "the target is cooling down",
        {"cooldown": "15m"},
        situation(recent=[past("web-1", State.succeeded, 10)]),
        Verdict.suppressed,
        "cooldown: web-1 was remediated at 2026-11-27T00:50:00+00:00; next allowed at 2026-11-27T01:05:00",
    ),
    (
        "the cooldown is over",
        {"cooldown": "15m"},
        situation(recent=[past("web-1", State.failed, 15)]),
        Verdict.executed,
        "passed",
    ),
    (
        "a suppressed decision starts no cooldown",
        {"cooldown": "15m"},
        situation(recent=[past("web-1", State.suppressed, 1), past("web-1", State.denied, 1)]),
        Verdict.executed,
        "passed",
    ),
    (
        "cooldowns are per target",
        {"cooldown": "15m"},
        situation(recent=[past("web-2", State.running, 1)]),
        Verdict.executed,
        "passed",
    ),
    (
        "the window's executions are used up",
        {"max_executions": 2, "window": "1h", "cooldown": "1m"},
        situation(recent=[past("web-2", State.succeeded, 30), past("web-3", State.queued, 50)]),
        Verdict.suppressed,
        "rate limit: 2 executions in the last 1:00:00, at most 2",
    ),
    (
        "an execution older than the window no longer counts",
        {"max_executions": 2, "window": "1h", "cooldown": "1m"},
        situation(recent=[past("web-2", State.succeeded, 30), past("web-3", State.failed, 61)]),
        Verdict.executed,
        "passed",
    ),
    (
        "a destructive action needs approval",
        {},
        situation(destructive=True),
        Verdict.needs_approval,
        "restart_pod is destructive: a responder approves or denies it",
    ),
    (
        "approval: never runs it",
        {"approval": "never"},
        situation(destructive=True),
        Verdict.executed,
        "passed",
    ),
    (
        "approval: always asks even for a harmless action",
        {"approval": "always"},
        situation(),
        Verdict.needs_approval,
        "the playbook requires approval",
    ),
    (
        "a dry run needs no approval and changes nothing",
        {"dry_run": True},
        situation(destructive=True),
        Verdict.executed,
        "dry run: records what would run",
    ),
    (
        "the breaker comes before everything else",
        {"dry_run": True},
        situation(breaker_opened_at=T0, busy_targets=frozenset({"web-1"})),
        Verdict.suppressed,
        "circuit breaker open",
    ),
]


@pytest.mark.parametrize(
    ("guardrails", "given", "verdict", "reason"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_the_guardrails_decide(guardrails: dict[str, Any], given: Situation, verdict: Verdict, reason: str):
    decision = decide(playbook(**guardrails), given, T0)
    assert decision.verdict is verdict
    assert reason in decision.reason
    assert decision.dry_run is bool(guardrails.get("dry_run") and verdict is Verdict.executed)


def test_a_disabled_playbook_decides_nothing():
    off = playbook().model_copy(update={"enabled": False})
    assert decide(off, situation(), T0).verdict is Verdict.suppressed


BLAST = [
    ("one pod of at most one", ["web-1"], 1, "app=web", None),
    ("three of at most three", ["a", "b", "c"], 3, "app=web", None),
    (
        "four of at most three",
        ["a", "b", "c", "d"],
        3,
        "app=web",
        "selects 4 pods (a, b, c, d); the playbook allows at most 3",
    ),
    ("an empty selector", ["a"], 5, "  ", "the pods selector is empty; an empty selector never means all"),
    ("nothing selected", [], 5, "app=web", "no pods matches app=web"),
]


@pytest.mark.parametrize(
    ("selected", "limit", "selector", "refusal"), [b[1:] for b in BLAST], ids=[b[0] for b in BLAST]
)
def test_the_blast_radius(selected: list[str], limit: int, selector: str, refusal: str | None):
    if refusal is None:
        limit_blast("pods", selected, limit, selector=selector)
        return
    with pytest.raises(Refused) as caught:
        limit_blast("pods", selected, limit, selector=selector)
    assert refusal in str(caught.value)


def test_labels_fill_placeholders_and_a_missing_or_empty_one_is_refused():
    labels = {"namespace": "prod", "pod": "api-1", "empty": ""}
    assert render({"a": ["${namespace}/${pod}", 3], "b": "$$5"}, labels) == {
        "a": ["prod/api-1", 3],
        "b": "$5",
    }
    with pytest.raises(Refused, match="the alert has no label 'app'"):
        render({"selector": "app=${app}"}, labels)
    with pytest.raises(Refused, match="no label 'empty'"):
        render("x-${empty}", labels)
