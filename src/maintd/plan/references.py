"""Cross-references of the on-call sections: policies name schedules, layers, people, roles, channels."""

from __future__ import annotations

from typing import TYPE_CHECKING

from maintd.plan.lifecycle import lifecycle_problems
from maintd.plan.oncall import Loc
from maintd.plan.playbooks import playbook_problems
from maintd.plan.reviews import review_problems
from maintd.plan.slos import slo_problems

if TYPE_CHECKING:
    from maintd.plan.models import Plan


def escalation_problems(plan: Plan) -> list[tuple[Loc, str]]:
    """Unknown or twice-defined names, each with its place (list key and position first)."""
    problems: list[tuple[Loc, str]] = []
    problems += _twice("channels", [c.name for c in plan.channels], "channel")
    problems += _twice("escalation_policies", [p.name for p in plan.escalation_policies], "policy")
    people = {p.name for p in plan.people}
    roles = {role for p in plan.people for role in p.roles}
    channels = {c.name for c in plan.channels}
    layers = {s.name: {layer.name for layer in s.layers} for s in plan.schedules}
    for i, policy in enumerate(plan.escalation_policies):
        for j, level in enumerate(policy.levels):
            for k, target in enumerate(level.notify):
                at: Loc = ("escalation_policies", i, "levels", j, "notify", k)
                if target.schedule is not None and target.schedule not in layers:
                    problems.append(((*at, "schedule"), f"unknown schedule {target.schedule!r}"))
                elif target.layer is not None and target.layer not in layers[str(target.schedule)]:
                    problems.append(
                        ((*at, "layer"), f"schedule {target.schedule!r} has no layer {target.layer!r}")
                    )
                if target.person is not None and target.person not in people:
                    problems.append(((*at, "person"), f"unknown person {target.person!r}"))
                if target.role is not None and target.role not in roles:
                    problems.append(((*at, "role"), f"nobody has the role {target.role!r}"))
                if target.channel is not None and target.channel not in channels:
                    problems.append(((*at, "channel"), f"unknown channel {target.channel!r}"))
    policies = {p.name for p in plan.escalation_policies}
    settings = plan.incidents
    if settings.escalation_policy is not None and settings.escalation_policy not in policies:
        problems.append(
            (("incidents", "escalation_policy"), f"unknown escalation policy {settings.escalation_policy!r}")
        )
    for i, rule in enumerate(settings.rules):
        if rule.escalation_policy is not None and rule.escalation_policy not in policies:
            problems.append(
                (
                    ("incidents", "rules", i, "escalation_policy"),
                    f"unknown escalation policy {rule.escalation_policy!r}",
                )
            )
    problems += playbook_problems(plan)  # playbooks: the step before a human is paged
    problems += lifecycle_problems(plan)  # components, documents, trainings (maintd.lifecycle)
    problems += slo_problems(plan)  # service level objectives (maintd.slo)
    problems += review_problems(plan)  # recurring reviews (maintd.reviews)
    return problems


def _twice(key: str, names: list[str], what: str) -> list[tuple[Loc, str]]:
    seen: set[str] = set()
    out: list[tuple[Loc, str]] = []
    for i, name in enumerate(names):
        if name in seen:
            out.append(((key, i, "name"), f"{what} {name!r} is defined twice"))
        seen.add(name)
    return out
