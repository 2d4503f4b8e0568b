"""Alert deliveries → alerts → incidents, as a pipeline of stages.

Every stage has the same signature: it reads and updates one typed Delivery
and returns False to stop the pipeline there. ``build_pipeline`` shows the
whole path top to bottom; ``ingest`` runs it for a batch of deliveries inside
the caller's transaction (the caller commits before it answers the sender).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import text
from sqlalchemy.orm import Session

from maintd.alerts.model import AlertIn, AlertStatus, Severity
from maintd.alerts.muting import Muters
from maintd.incidents.escalation import open_incident
from maintd.incidents.followup import follow_up
from maintd.incidents.followup import settle_breach as settle_breach  # where callers import it from
from maintd.incidents.lookups import OpenRows, flush, new_row
from maintd.incidents.states import OPEN, State, subject
from maintd.plan.incidents import IncidentSettings, Priority
from maintd.store.events import Event, append
from maintd.store.models import AlertRow, IncidentRow

_SEVERITY_RANK = {Severity.info: 0, Severity.warning: 1, Severity.error: 2, Severity.critical: 3}
_BY_SEVERITY = {
    Severity.critical: Priority.P1,
    Severity.error: Priority.P2,
    Severity.warning: Priority.P3,
    Severity.info: Priority.P3,
}


@dataclass
class Delivery:
    alert: AlertIn
    now: datetime
    settings: IncidentSettings
    actor: str
    row: AlertRow | None = None
    new: bool = False
    worse: bool = False  # a repeat of an open alert with a worse severity: classified again
    outcome: str = ""  # created, updated, resolved, acknowledged, dropped, muted
    priority: Priority | None = None
    incident: IncidentRow | None = None
    escalation_policy: str | None = None  # the policy of the incident this delivery opened
    events: list[Event] = field(default_factory=list)
    muters: Muters | None = None  # the batch's; None: built for this delivery alone


Stage = Callable[[Session, Delivery], bool]


def build_pipeline() -> list[Stage]:
    return [dedup, mute, classify, group, follow_up]


def ingest(
    session: Session,
    alerts: Iterable[AlertIn],
    *,
    now: datetime,
    settings: IncidentSettings,
    actor: str,
    maintenance_tasks: Collection[str] = (),
) -> list[Delivery]:
    """Run every delivery through the stages; append their events. Flushes only.

    ``maintenance_tasks``: the plan's tasks with ``mute_alerts``; their running runs mute alerts.
    """
    (done,) = ingest_requests(
        session, [(alerts, actor)], now=now, settings=settings, maintenance_tasks=maintenance_tasks
    )
    return done


def ingest_requests(
    session: Session,
    requests: Sequence[tuple[Iterable[AlertIn], str]],
    *,
    now: datetime,
    settings: IncidentSettings,
    maintenance_tasks: Collection[str] = (),
    received: Sequence[datetime | None] = (),
) -> list[list[Delivery]]:
    """``ingest`` for several senders' ``(alerts, actor)`` at once, in order: one lock, one read of
    the muters and of the open alerts and incidents, one write of the events. Flushes only.

    ``received``: per request, when it was taken if that was before ``now`` (``maintd intake``
    journals a request and the drain stores it later): its alerts are stamped with that time
    (received, started, their incident opened and its deadlines counted from it), never later
    than ``now``. Muting is decided as of ``now``.

    The stages run without autoflush: ``OpenRows`` already knows what is pending, so new alerts
    and incidents are inserted once, whole, by the flush at the end (with autoflush every read
    inserted the rows added since, and each later change to them was one more UPDATE). A read
    that must see this batch's changes flushes first: ``OpenRows`` on a miss, the inhibition
    sources, and ``follow_up``, which runs with autoflush as before.
    """
    flush(session)  # the caller's pending changes, as the first query would have autoflushed them
    autoflush, session.autoflush = session.autoflush, False
    try:
        answers, events = _run(
            session,
            requests,
            [min(at, now) if at is not None else now for at in received] or [now] * len(requests),
            now=now,
            settings=settings,
            maintenance_tasks=maintenance_tasks,
        )
    finally:
        session.autoflush = autoflush
    flush(session)  # the new alerts (one INSERT), incidents and changes
    append(session, events)
    return answers


def _run(
    session: Session,
    requests: Sequence[tuple[Iterable[AlertIn], str]],
    stamps: Sequence[datetime],
    *,
    now: datetime,
    settings: IncidentSettings,
    maintenance_tasks: Collection[str],
) -> tuple[list[list[Delivery]], list[Event]]:
    """The stages for every delivery (autoflush off); their events, still to be written."""
    _one_ingest_at_a_time(session)
    stages = build_pipeline()
    muters = Muters(session, now=now, settings=settings, maintenance_tasks=maintenance_tasks)
    batches = [(list(alerts), actor) for alerts, actor in requests]
    everything = [a for alerts, _actor in batches for a in alerts]
    lookups = OpenRows.of(session)
    lookups.prefetch(a.identity for a in everything)
    lookups.prefetch_incidents(group_key(a.labels, settings.group_by)[0] for a in everything)
    lookups.reserve_alert_ids(len(everything))
    answers = []
    events: list[Event] = []  # written once for the batch, in delivery order
    for (alerts, actor), stamp in zip(batches, stamps, strict=True):
        done = []
        for alert in alerts:
            delivery = Delivery(alert, stamp, settings, actor, muters=muters)
            for stage in stages:
                if stage is follow_up and not delivery.new and delivery.row is not None:
                    # follow_up reads what this batch changed, may write events itself and changes
                    # incidents in ways not tracked here: everything before it goes to the database.
                    flush(session)
                    append(session, events)
                    events.clear()
                    lookups.forget()
                    if not _with_autoflush(session, follow_up, delivery):
                        break
                elif not stage(session, delivery):
                    break
            events.extend(delivery.events)
            done.append(delivery)
        answers.append(done)
    return answers, events


def _with_autoflush(session: Session, stage: Stage, delivery: Delivery) -> bool:
    session.autoflush = True
    try:
        go = stage(session, delivery)
        flush(session)  # what it changed, before the next delivery's reads (autoflush is off again)
    finally:
        session.autoflush = False
    return go


# pg_advisory_xact_lock key for "one ingest at a time" ("maintd" in ASCII).
_INGEST_LOCK = 0x6D61696E7464


def _one_ingest_at_a_time(session: Session) -> None:
    # The stages match a delivery to open alerts and incidents by reading first, so two
    # transactions delivering the same new alert at once would both insert it. SQLite's
    # BEGIN IMMEDIATE already queues writers; on PostgreSQL a transaction-scoped advisory lock does.
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _INGEST_LOCK})


def dedup(session: Session, d: Delivery) -> bool:
    """Match the delivery to the open alert with the same identity, or start a new one."""
    alert = d.alert
    lookups = OpenRows.of(session)
    open_row = lookups.alert(alert.identity)
    if open_row is not None:
        d.row = open_row
        open_row.last_received_at = d.now
        open_row.received += 1
        if alert.status is AlertStatus.resolved:
            open_row.status = AlertStatus.resolved.value
            open_row.ends_at = alert.ends_at or d.now
            d.outcome = "resolved"
            d.events.append(_alert_event("alert.resolved", open_row, d))
            return True
        if alert.acknowledge:
            if open_row.acknowledged_at is None:
                open_row.acknowledged_at = d.now
            d.outcome = "acknowledged"
            return True
        if alert.annotations:
            open_row.annotations = alert.annotations
        if alert.summary:
            open_row.summary = alert.summary
        d.outcome = "updated"
        if _SEVERITY_RANK[alert.severity] > _SEVERITY_RANK[Severity(open_row.severity)]:
            d.events.append(
                _alert_event("alert.severity", open_row, d, was=open_row.severity, to=alert.severity)
            )
            open_row.severity = alert.severity.value
            d.worse = open_row.muted_by is None and open_row.incident_id is not None
        # A repeat goes on only when muted (to be checked again) or worse (to be classified again).
        return open_row.muted_by is not None or d.worse
    if alert.status is AlertStatus.resolved or alert.acknowledge:
        d.outcome = "dropped"  # nothing open to resolve or acknowledge (PagerDuty drops these too)
        return False
    d.row = new_row(
        AlertRow,
        id=lookups.new_alert_id(),
        fingerprint=alert.fingerprint,
        dedup_key=alert.identity,
        source=alert.source,
        integration=alert.integration,
        status=AlertStatus.firing.value,
        severity=alert.severity.value,
        priority=Priority.P3.value,
        summary=alert.summary or alert.labels.get("alertname", "alert"),
        labels=alert.labels,
        annotations=alert.annotations,
        starts_at=alert.starts_at or d.now,
        last_received_at=d.now,
        received=1,
    )
    lookups.add_new(d.row)  # inserted at the next flush with the batch's other new alerts
    d.new = True
    d.outcome = "created"
    return True


def mute(session: Session, d: Delivery) -> bool:
    """A new alert that a silence, an open maintenance window, a maintenance run or a firing
    alert (inhibition) mutes is stored and says why, but opens no incident.

    A repeat of a muted alert is checked again: once nothing mutes it, it goes on to classify
    and group as if new (outcome ``unmuted``).
    """
    row = d.row
    if row is None:
        return True
    muters = d.muters or Muters(session, now=d.now, settings=d.settings, maintenance_tasks=())
    if d.outcome == "resolved":
        muters.stopped(row)
        return True
    if not d.new and not (d.outcome == "updated" and row.muted_by is not None):
        return True
    reason = muters.muted_by(d.alert.labels)
    if reason is None:
        if not d.new:
            d.events.append(_alert_event("alert.unmuted", row, d, was=row.muted_by))
            row.muted_by = None
            d.new, d.outcome = True, "unmuted"  # classify and group take it from here
        muters.firing(row)
        return True
    if d.new:
        row.muted_by = reason
        d.outcome = "muted"
        d.events.append(_alert_event("alert.muted", row, d, by=reason))
        muters.stopped(row)
    return False


def classify(session: Session, d: Delivery) -> bool:
    """P0-P3: an explicit ``priority`` label, else the plan's rules, else by severity (seed table).

    Rules can match ``severity`` as if it were a label, unless the alert has a label of that name.
    A repeat with a worse severity is classified again; its priority only ever rises.
    """
    if not (d.new or d.worse) or d.row is None:
        return True
    labels = {"severity": d.alert.severity.value, **d.alert.labels}
    priority = None
    if labels.get("priority") in Priority.__members__:
        priority = Priority(labels["priority"])
    if priority is None:
        priority = next(
            (r.priority for r in d.settings.rules if all(m.matches(labels) for m in r.match)), None
        )
    d.priority = priority or _BY_SEVERITY[d.alert.severity]
    if d.worse and d.priority.rank <= Priority(d.row.priority).rank:
        return False  # no more urgent than it was: nothing to change
    d.row.priority = d.priority.value
    return True


def group(session: Session, d: Delivery) -> bool:
    """A new alert joins the open incident of its group, or opens one."""
    if d.worse:
        return _raise_with(session, d)
    if not d.new or d.row is None or d.priority is None:
        return True
    key, key_labels = group_key(d.alert.labels, d.settings.group_by)
    lookups = OpenRows.of(session)
    incident = lookups.incident(key)
    if incident is None:
        incident = new_row(
            IncidentRow,
            id=lookups.new_incident_id(),  # known now: no flush, so no INSERT and then UPDATE of alerts
            title=d.row.summary,
            priority=d.priority.value,
            state=State.triggered.value,
            group_key=key,
            opened_at=d.now,
            ack_deadline=d.now + d.settings.deadlines[d.priority],
            postmortem_required=d.priority in (Priority.P0, Priority.P1),
            labels=key_labels,
        )
        session.add(incident)  # inserted with this batch's other new rows, at its end
        lookups.incident_opened(key, incident)
        d.events.append(
            Event(
                "incident.opened",
                subject(incident.id),
                d.now,
                d.actor,
                {
                    "priority": incident.priority,
                    "title": incident.title,
                    "alert": d.row.id,
                    "ack_deadline": incident.ack_deadline.isoformat(),
                },
            )
        )
        d.escalation_policy = open_incident(
            session, incident, settings=d.settings, labels=d.alert.labels, now=d.now, events=d.events
        )
    else:
        _raise_priority(incident, d)
    d.row.incident_id = incident.id
    d.incident = incident
    d.events.append(_alert_event("alert.firing", d.row, d, incident=incident.id))
    return True


def _raise_with(session: Session, d: Delivery) -> bool:
    """An open alert became more urgent: so does its incident, if still open."""
    assert d.row is not None and d.row.incident_id is not None
    incident = session.get(IncidentRow, d.row.incident_id)
    if incident is not None and State(incident.state) in OPEN:
        _raise_priority(incident, d)
        d.incident = incident
    return True


def _raise_priority(incident: IncidentRow, d: Delivery) -> None:
    """A more urgent alert in an incident raises the incident's priority (never lowers it)."""
    assert d.priority is not None and d.row is not None
    if Priority(incident.priority).rank >= d.priority.rank:
        return
    if incident.acknowledged_at is None:  # a more urgent alert brings the deadline forward
        incident.ack_deadline = min(
            incident.ack_deadline, incident.opened_at + d.settings.deadlines[d.priority]
        )
    d.events.append(
        Event(
            "incident.priority",
            subject(incident.id),
            d.now,
            d.actor,
            {"from": incident.priority, "to": d.priority.value, "reason": f"alert {d.row.id}"},
        )
    )
    incident.priority = d.priority.value
    incident.postmortem_required = incident.postmortem_required or d.priority in (Priority.P0, Priority.P1)


def group_key(labels: dict[str, str], group_by: list[str]) -> tuple[str, dict[str, str]]:
    """The key of the incident group of these labels, and the labels it is made of."""
    key_labels = {name: labels.get(name, "") for name in group_by}
    key = "|".join(f"{k}={v}" for k, v in key_labels.items())
    if len(key) > 255:  # the column's size; long label values still group exactly, by digest
        key = "sha256:" + hashlib.sha256(key.encode()).hexdigest()
    return key, key_labels


def _alert_event(kind: str, row: AlertRow, d: Delivery, **payload: object) -> Event:
    body: dict[str, object] = {"fingerprint": row.fingerprint, "source": row.source, "summary": row.summary}
    body.update(payload)
    return Event(kind, f"alert:{row.id}", d.now, d.actor, body)
