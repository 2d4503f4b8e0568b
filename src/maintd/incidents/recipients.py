"""Who an escalation target means at one instant: on-call schedules, roles, people and channels.

Resolved when a level fires, never when the incident opens, so a handoff between
the two pages whoever is on call by then. Names the plan no longer has (the
incident keeps the policy it opened with; the plan may have moved on) resolve
to nobody, with the reason.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from maintd.notify.outbox import Recipient
from maintd.oncall.rotation import on_call
from maintd.plan.escalation import EscalationTarget
from maintd.plan.notify import Channel, NotifyRule
from maintd.plan.oncall import OnCallSchedule, Person

if TYPE_CHECKING:
    from maintd.plan.models import Plan

PERSON, CHANNEL = "person:", "channel:"


@dataclass(frozen=True)
class Roster:
    """The active plan's people, schedules and channels, by name."""

    people: dict[str, Person] = field(default_factory=dict)
    schedules: dict[str, OnCallSchedule] = field(default_factory=dict)
    channels: dict[str, Channel] = field(default_factory=dict)

    @classmethod
    def of(cls, plan: Plan) -> Roster:
        return cls(
            people={p.name: p for p in plan.people},
            schedules={s.name: s for s in plan.schedules},
            channels={c.name: c for c in plan.channels},
        )


@dataclass
class Resolved:
    recipients: list[Recipient] = field(default_factory=list)
    misses: list[str] = field(default_factory=list)  # why a target gave nobody

    def add(self, recipient: Recipient) -> None:
        if all(r.key != recipient.key for r in self.recipients):
            self.recipients.append(recipient)


def resolve(targets: Iterable[EscalationTarget], roster: Roster, at: datetime) -> Resolved:
    """The recipients of ``targets`` at ``at``, each once, in the order the targets name them."""
    out = Resolved()
    for target in targets:
        names, miss = _people(target, roster, at)
        if target.channel is not None:
            channel = roster.channels.get(target.channel)
            if channel is None:
                out.misses.append(f"{target}: the plan has no channel {target.channel!r}")
            else:
                out.add(Recipient(f"{CHANNEL}{channel.name}", [NotifyRule(url=channel.url)]))
            continue
        if miss:
            out.misses.append(f"{target}: {miss}")
        for name in names:
            person = roster.people.get(name)
            if person is None:
                out.misses.append(f"{target}: the plan has no person {name!r}")
            else:
                out.add(Recipient(f"{PERSON}{person.name}", list(person.notify)))
    return out


def _people(target: EscalationTarget, roster: Roster, at: datetime) -> tuple[list[str], str]:
    """Person names a non-channel target stands for, or the reason it stands for nobody."""
    if target.person is not None:
        return [target.person], ""
    if target.role is not None:
        names = [p.name for p in roster.people.values() if target.role in p.roles]
        return names, "" if names else "nobody has this role"
    if target.schedule is None:
        return [], ""
    schedule = roster.schedules.get(target.schedule)
    if schedule is None:
        return [], "the plan has no such schedule"
    who = on_call(schedule, at)
    if target.layer is not None:
        if target.layer not in who:
            return [], "the schedule has no such layer"
        person = who[target.layer]
        return ([person], "") if person else ([], f"nobody is on call at {at:%Y-%m-%d %H:%M} UTC")
    names = list(dict.fromkeys(p for p in who.values() if p))
    return names, "" if names else f"nobody is on call at {at:%Y-%m-%d %H:%M} UTC"
