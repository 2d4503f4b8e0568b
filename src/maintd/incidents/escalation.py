"""Escalation: an incident's policy as it was when it opened, one database timer per step.

When an incident opens, its policy (the first matching priority rule's, else the
plan's) is copied into the incident and every step it will page is scheduled:
``c0.l1`` is cycle 0, level 1, due ``opened_at + group_wait + after``. A step
that fires resolves its targets *then* (who is on call, who has the role) and
queues one notification per recipient; a level that reaches nobody says why and
brings the next step forward at once. Leaving ``triggered`` (acknowledged,
mitigated, resolved) cancels the pending steps and undelivered pages; resolving
tells everyone who was paged; going back to ``triggered`` starts the policy again
(steps of round ``r1.``, ``r2.``, ...). This module never imports the state
machine: ``states.transition`` calls ``follow_transition``.
"""

from __future__ import annotations

import weakref
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import Session

from maintd.incidents.links import incident_links
from maintd.incidents.recipients import PERSON, Roster, resolve
from maintd.notify.message import Message
from maintd.notify.outbox import SENT, Recipient, cancel_pending, enqueue
from maintd.plan.escalation import EscalationPolicy
from maintd.plan.incidents import IncidentSettings
from maintd.plan.notify import NotifyRule
from maintd.store.events import SYSTEM, Event, append
from maintd.store.models import AlertRow, IncidentRow, NotificationRow, PlanVersionRow, TimerRow
from maintd.timers import Handler, NewTimer, of_subject, pending
from maintd.timers import cancel as cancel_timers
from maintd.timers import schedule_all as schedule_timers

KIND = "escalate"
TRIGGERED, RESOLVED = "triggered", "resolved"


def choose_policy(settings: IncidentSettings, labels: Mapping[str, str]) -> str | None:
    """The first matching priority rule's policy, else the plan's; None: nobody is paged."""
    for rule in settings.rules:
        if all(m.matches(dict(labels)) for m in rule.match):
            if rule.escalation_policy is not None:
                return rule.escalation_policy
            break
    return settings.escalation_policy


_NEWEST_PLAN = select(PlanVersionRow.id, PlanVersionRow.digest).order_by(PlanVersionRow.id.desc()).limit(1)
_POLICIES_OF = select(PlanVersionRow.document["escalation_policies"]).where(
    PlanVersionRow.id == bindparam("id_")
)
POLICIES_READ = "maintd.escalation.policies"  # session.info: this transaction's, once read
# The newest plan's policies per database (engine), with the (id, digest) they were read for:
# reading and validating them for every new incident was ~0.2 ms of the alert's transaction.
# The digest tells a plan id SQLite gave again after a rollback from the one remembered.
_POLICIES: weakref.WeakKeyDictionary[Any, tuple[tuple[int, str], dict[str, EscalationPolicy]]] = (
    weakref.WeakKeyDictionary()
)


def active_policies(session: Session) -> dict[str, EscalationPolicy]:
    """The escalation policies of the active (newest stored) plan, by name; read once per
    transaction (an alert transaction opening many incidents asked for each)."""
    connection = session.connection()  # begins the transaction, if none has begun
    transaction = session.get_transaction()
    read = session.info.get(POLICIES_READ)
    if read is not None and read[0] is transaction:
        return dict(read[1])
    newest = connection.execute(_NEWEST_PLAN).first()
    if newest is None:
        return {}
    key, engine = (int(newest.id), str(newest.digest)), connection.engine
    remembered = _POLICIES.get(engine)
    if remembered is not None and remembered[0] == key:
        policies = remembered[1]
    else:
        # Only the policies: the stored plan can be megabytes (every target and task).
        found = connection.execute(_POLICIES_OF, {"id_": key[0]}).scalar()
        policies = {p.name: p for p in (EscalationPolicy.model_validate(p) for p in found or [])}
        _POLICIES[engine] = (key, policies)
    session.info[POLICIES_READ] = (transaction, policies)
    return dict(policies)


def open_incident(
    session: Session,
    incident: IncidentRow,
    *,
    settings: IncidentSettings,
    labels: Mapping[str, str],
    now: datetime,
    events: list[Event],
    policies: Mapping[str, EscalationPolicy] | None = None,
) -> str | None:
    """Snapshot the new incident's policy and schedule its steps; the chosen policy's name."""
    name = choose_policy(settings, labels)
    if name is None:
        return None
    policy = (policies if policies is not None else active_policies(session)).get(name)
    incident.escalation_policy = name
    if policy is None:
        reason = f"the active plan has no escalation policy {name!r}: nobody is paged"
        events.append(_event("escalation.nobody", incident, now, {"policy": name, "reason": reason}))
        return name
    incident.escalation = policy.model_dump(mode="json")
    start(session, incident, policy=policy, begin=now + settings.group_wait, now=now, events=events)
    return name


def start(
    session: Session,
    incident: IncidentRow,
    *,
    policy: EscalationPolicy,
    begin: datetime,
    now: datetime,
    events: list[Event],
    round_: int = 0,
) -> None:
    """Schedule every step of ``policy`` from ``begin`` (flushes only)."""
    subject = f"incident:{incident.id}"
    timers = [
        NewTimer(
            KIND,
            subject,
            step_key(round_, cycle, level),
            begin + offset,
            {"incident": incident.id, "round": round_, "cycle": cycle, "level": level},
        )
        for cycle, level, offset in policy.steps()
    ]
    schedule_timers(session, timers, now=now)
    steps = [t.step for t in timers]
    payload = {"policy": policy.name, "round": round_, "first_page": begin.isoformat(), "steps": steps}
    events.append(_event("escalation.started", incident, now, payload))


def step_key(round_: int, cycle: int, level: int) -> str:
    """``c0.l1`` for cycle 0, level 1 (levels count from 1); ``r1.`` in front after a first reopening."""
    key = f"c{cycle}.l{level + 1}"
    return f"r{round_}.{key}" if round_ else key


def follow_transition(
    session: Session,
    incident: IncidentRow,
    *,
    was: str,
    to: str,
    actor: str,
    now: datetime,
    events: list[Event] | None,
) -> None:
    """What a state change means for the incident's escalation (called by ``states.transition``)."""
    if incident.escalation is None:
        return
    out: list[Event] = [] if events is None else events
    if was == TRIGGERED and to != TRIGGERED:
        _stop(session, incident, to, actor, now, out)
    if to == TRIGGERED and was != TRIGGERED:
        policy = EscalationPolicy.model_validate(incident.escalation)
        start(
            session,
            incident,
            policy=policy,
            begin=now,
            now=now,
            events=out,
            round_=_round(session, incident) + 1,
        )
    if to == RESOLVED:
        _tell_resolved(session, incident, actor, now, out)
    if events is None:
        append(session, out)


def _stop(
    session: Session, incident: IncidentRow, to: str, actor: str, now: datetime, out: list[Event]
) -> None:
    # Timers first: on PostgreSQL this UPDATE waits for a step being fired right now to commit,
    # so the pages that step queues are visible to the cancelling UPDATE after it.
    steps = cancel_timers(session, subject=f"incident:{incident.id}", kind=KIND, now=now)
    pages = cancel_pending(
        session, incident_id=incident.id, state=TRIGGERED, now=now, reason=f"incident {to}"
    )
    out.append(
        _event("escalation.stopped", incident, now, {"reason": to, "steps": steps, "pages": pages}, actor)
    )


def _round(session: Session, incident: IncidentRow) -> int:
    found = [
        int(t.payload.get("round", 0))
        for t in of_subject(session, f"incident:{incident.id}")
        if t.kind == KIND
    ]
    return max(found, default=0)


def _tell_resolved(
    session: Session, incident: IncidentRow, actor: str, now: datetime, out: list[Event]
) -> None:
    """A "resolved" page to everyone whose "triggered" page was delivered, once per round."""
    paged = session.execute(
        select(NotificationRow.recipient, NotificationRow.channels, NotificationRow.message)
        .where(
            NotificationRow.incident_id == incident.id,
            NotificationRow.state == TRIGGERED,
            NotificationRow.status == SENT,
        )
        .order_by(NotificationRow.id)
    ).all()
    if not paged:
        return
    round_ = _round(session, incident)
    step = f"r{round_}.final" if round_ else "final"
    message = _message(session, incident, RESOLVED)
    message.url = paged[-1].message.get("url")  # the link the pages carried
    told = {row.recipient: row.channels for row in paged}
    for key, channels in told.items():
        recipient = Recipient(key, [NotifyRule.model_validate(c) for c in channels])
        enqueue(
            session,
            subject=f"incident:{incident.id}",
            incident_id=incident.id,
            recipient=recipient,
            state=RESOLVED,
            step=step,
            message=message,
            now=now,
        )
    out.append(_event("escalation.resolved_sent", incident, now, {"recipients": list(told)}, actor))


class Escalator:
    """The ``escalate`` timer handler: page one step's recipients, as the plan resolves them now."""

    def __init__(self, roster: Roster, *, base_url: str) -> None:
        self.roster = roster
        self.base_url = base_url.rstrip("/")

    def __call__(self, session: Session, timer: TimerRow, now: datetime) -> None:
        incident = session.get(IncidentRow, int(timer.payload["incident"]))
        if incident is None or incident.state != TRIGGERED or incident.escalation is None:
            return  # answered between the listing and the claim: nothing to page
        policy = EscalationPolicy.model_validate(incident.escalation)
        cycle, index = int(timer.payload["cycle"]), int(timer.payload["level"])
        level = policy.levels[index]
        found = resolve(level.notify, self.roster, now)
        where = _where(policy, cycle, index)
        reachable = [r for r in found.recipients if r.rules]
        message = _message(session, incident, TRIGGERED)
        message.details = [where, *message.details]
        message.url = f"{self.base_url}/api/v1/incidents/{incident.id}"
        for recipient in found.recipients:
            self._page(session, incident, recipient, timer.step, message, now)
        payload: dict[str, Any] = {
            "step": timer.step,
            "level": index + 1,
            "of": len(policy.levels),
            "cycle": cycle,
            "recipients": [r.key for r in found.recipients],
        }
        if found.misses:
            payload["misses"] = found.misses
        if reachable:
            append(session, _event("escalation.fired", incident, now, payload))
            return
        payload["reason"] = "; ".join(found.misses) or "no recipient has a notification channel"
        payload["next"] = _bring_forward(session, incident, now)
        append(session, _event("escalation.nobody", incident, now, payload))

    def _page(
        self,
        session: Session,
        incident: IncidentRow,
        recipient: Recipient,
        step: str,
        message: Message,
        now: datetime,
    ) -> None:
        if recipient.key.startswith(PERSON):
            ack, resolve_ = incident_links(
                session,
                incident_id=incident.id,
                person=recipient.key.removeprefix(PERSON),
                base_url=self.base_url,
                now=now,
            )
            message = message.model_copy(update={"ack_url": ack, "resolve_url": resolve_})
        enqueue(
            session,
            subject=f"incident:{incident.id}",
            incident_id=incident.id,
            recipient=recipient,
            state=TRIGGERED,
            step=step,
            message=message,
            now=now,
        )


def handlers(roster: Roster, *, base_url: str) -> dict[str, Handler]:
    """The timer handlers escalation brings (the engine adds other rooms' kinds)."""
    return {KIND: Escalator(roster, base_url=base_url)}


def _bring_forward(session: Session, incident: IncidentRow, now: datetime) -> str | None:
    """Make the incident's next pending step due now; its step key (None: no step is left)."""
    later = [t for t in pending(session, subject=f"incident:{incident.id}", kind=KIND) if t.due_at > now]
    if not later:
        return None
    session.execute(
        update(TimerRow)
        .where(TimerRow.id == later[0].id, TimerRow.fired_at.is_(None), TimerRow.cancelled_at.is_(None))
        .values(due_at=now)
        .execution_options(synchronize_session=False)
    )
    return later[0].step


def _where(policy: EscalationPolicy, cycle: int, index: int) -> str:
    text = f"escalation level {index + 1} of {len(policy.levels)}"
    if policy.repeat:
        text += f", pass {cycle + 1} of {policy.repeat + 1}"
    return f"{text} ({policy.name})"


_ALERTS_OF = (
    select(AlertRow.severity, AlertRow.labels, AlertRow.annotations)
    .where(AlertRow.incident_id == bindparam("incident"))
    .order_by(AlertRow.id)
)


def _message(session: Session, incident: IncidentRow, state: str) -> Message:
    # Three columns on the session's connection: loading AlertRow objects cost ~0.1 ms more a page.
    session.flush()  # alerts the transaction added
    alerts = session.connection().execute(_ALERTS_OF, {"incident": incident.id}).all()
    first = alerts[0] if alerts else None
    runbook = next(
        (
            str(a.annotations.get(k))
            for a in alerts
            for k in ("runbook", "runbook_url")
            if a.annotations.get(k)
        ),
        None,
    )
    target = next((str(a.labels["target"]) for a in alerts if a.labels.get("target")), None)
    return Message(
        title=incident.title,  # the heading adds priority, state and number
        summary=incident.title,
        state=state,
        incident_id=incident.id,
        priority=incident.priority,
        severity=first.severity if first is not None else None,
        target=target or incident.labels.get("target") or None,
        runbook=runbook,
        deadline=incident.ack_deadline if state == TRIGGERED else None,
        details=[f"alerts: {len(alerts)}"] if len(alerts) > 1 else [],
    )


def _event(
    kind: str, incident: IncidentRow, now: datetime, payload: dict[str, Any], actor: str = SYSTEM
) -> Event:
    return Event(kind, f"incident:{incident.id}", now, actor, payload)
