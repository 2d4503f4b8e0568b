"""Lifecycle reminders and end-of-life notices: database timers (maintd.timers) queueing
notifications through the outbox, the shape of maintd.postmortems.reminders.

- ``lc-doc``: a document's review is due (stale: cadence lapsed or something it covers
  changed), to its owner; again as overdue 48 hours later if still not reviewed.
- ``lc-training``: a person's training is due in 14 days, then overdue when due (at once
  when never completed).
- ``lc-eol``: the version in use is within six months of its end of support: one
  ``lifecycle.eol_notice`` event and one notification to the owner, per component and version.

``schedule_all`` sets the timers the current state calls for; keys carry the instant they are
about, so calling it again adds nothing, and a review or completion simply makes the pending
timers stale: a handler re-checks the state when it fires and queues nothing if it moved on.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from maintd import timers
from maintd.lifecycle import documents, inventory, training
from maintd.lifecycle.dates import midnight
from maintd.lifecycle.records import (
    DOC_REMINDED,
    EOL_NOTICE,
    TRAINING_REMINDED,
    Catalog,
    NotFound,
    component_subject,
    doc_subject,
    training_subject,
)
from maintd.notify.message import Message
from maintd.notify.outbox import Recipient, enqueue
from maintd.plan.lifecycle import Stage
from maintd.plan.models import Plan
from maintd.store.events import SYSTEM, Event, append
from maintd.store.models import TimerRow

DOC, TRAINING, EOL = "lc-doc", "lc-training", "lc-eol"  # timer kinds
TRAINING_SOON = timedelta(days=14)
REMINDER, OVERDUE, NOTICE = "reminder", "overdue", "eol"  # notification states


def schedule_all(session: Session, catalog: Catalog, now: datetime) -> int:
    """Add the timers the catalog's state calls for at ``now``; how many were added."""
    added = 0
    for c in inventory.states(session, catalog, now):
        if c.stage != Stage.retirement:
            at = max(now, midnight(c.notice_from))
            payload = {"component": c.name, "version": c.version}
            added += _add(session, EOL, component_subject(c.name), f"eol:{c.version}", at, payload, now)
    for d in documents.statuses(session, catalog, until=now):
        due = d.stale_since or d.next_due
        payload = {"document": d.name, "due": due.isoformat()}
        added += _add(
            session, DOC, doc_subject(d.name), f"review:{due.isoformat()}", max(now, due), payload, now
        )
        late = due + documents.CURRENCY_WINDOW
        added += _add(
            session, DOC, doc_subject(d.name), f"late:{due.isoformat()}", max(now, late), payload, now
        )
    for t in training.statuses(session, catalog, at=now):
        subject = training_subject(t.person, t.training)
        key = t.due_at.isoformat() if t.due_at else "never"
        payload = {"person": t.person, "training": t.training, "due": key}
        if t.due_at is not None and t.current:
            soon = max(now, t.due_at - TRAINING_SOON)
            added += _add(session, TRAINING, subject, f"soon:{key}", soon, payload, now)
        added += _add(session, TRAINING, subject, f"overdue:{key}", max(now, t.due_at or now), payload, now)
    return added


def _add(
    session: Session,
    kind: str,
    subject: str,
    step: str,
    at: datetime,
    payload: dict[str, str],
    now: datetime,
) -> int:
    return int(
        timers.schedule(session, kind=kind, subject=subject, step=step, due_at=at, payload=payload, now=now)
    )


def handlers(plan: Plan, *, base_url: str) -> dict[str, timers.Handler]:
    """The three timer kinds, bound to a loaded plan (the engine merges them into its handlers)."""
    catalog = Catalog.of(plan)
    base = base_url.rstrip("/")

    def fire_doc(session: Session, timer: TimerRow, now: datetime) -> None:
        _doc(session, timer, now, catalog, base)

    def fire_training(session: Session, timer: TimerRow, now: datetime) -> None:
        _training(session, timer, now, catalog, base)

    def fire_eol(session: Session, timer: TimerRow, now: datetime) -> None:
        _eol(session, timer, now, catalog, base)

    return {DOC: fire_doc, TRAINING: fire_training, EOL: fire_eol}


def _recipient(catalog: Catalog, name: str) -> Recipient:
    try:
        rules = list(catalog.person(name).notify)
    except NotFound:
        rules = []
    return Recipient(f"person:{name}", rules)


def _doc(session: Session, timer: TimerRow, now: datetime, catalog: Catalog, base: str) -> None:
    name = str(timer.payload["document"])
    only = replace(catalog, documents=[d for d in catalog.documents if d.name == name])  # not every one
    found = documents.statuses(session, only, until=now)
    if not found or found[0].stale_since is None or found[0].stale_since.isoformat() != timer.payload["due"]:
        return  # reviewed (or gone from the plan) since the timer was set
    doc = found[0]
    state = OVERDUE if timer.step.startswith("late:") else REMINDER
    assert doc.stale_since is not None
    when = doc.stale_since.strftime("%Y-%m-%d %H:%M UTC")
    message = Message(
        title=f"document {doc.name}: review {'overdue' if state == OVERDUE else 'due'}",
        summary=f"{doc.title or doc.name} ({doc.kind}) needs a review: {doc.stale_cause}, since {when}. "
        f"Owner: {doc.owner}.",
        state=state,
        url=f"{base}/api/v1/docs/stale",
        details=[
            *([f"Where: {doc.location}"] if doc.location else []),
            f"When reviewed: maintd docs reviewed {doc.name}",
        ],
    )
    _send(session, timer, now, catalog, doc.owner, state, message)
    payload = {
        "document": doc.name,
        "owner": doc.owner,
        "reminder": state,
        "stale_since": timer.payload["due"],
    }
    append(session, Event(DOC_REMINDED, timer.subject, now, SYSTEM, payload))


def _training(session: Session, timer: TimerRow, now: datetime, catalog: Catalog, base: str) -> None:
    person, name = str(timer.payload["person"]), str(timer.payload["training"])
    found = [
        s for s in training.statuses(session, catalog, at=now) if (s.person, s.training) == (person, name)
    ]
    if not found:
        return  # no longer required of them
    status = found[0]
    key = status.due_at.isoformat() if status.due_at else "never"
    if key != timer.payload["due"]:
        return  # completed since: its own timers are set
    state = REMINDER if timer.step.startswith("soon:") else OVERDUE
    if state == REMINDER and not status.current:
        state = OVERDUE
    if status.due_at is None:
        when = "never completed"
    else:
        when = (
            f"due {status.due_at.date().isoformat()}"
            if status.current
            else f"overdue since {status.due_at.date().isoformat()}"
        )
    message = Message(
        title=f"training {name} for {person}: {'due soon' if state == REMINDER else 'overdue'}",
        summary=f"{status.title or name} ({status.every}): {when}.",
        state=state,
        url=f"{base}/api/v1/training/overdue",
        details=[f"When completed: maintd training completed {person} {name}"],
    )
    _send(session, timer, now, catalog, person, state, message)
    payload = {"person": person, "training": name, "reminder": state, "due": timer.payload["due"]}
    append(session, Event(TRAINING_REMINDED, timer.subject, now, SYSTEM, payload))


def _eol(session: Session, timer: TimerRow, now: datetime, catalog: Catalog, base: str) -> None:
    name = str(timer.payload["component"])
    found = inventory.states(
        session, replace(catalog, components=[c for c in catalog.components if c.name == name]), now
    )
    if not found or found[0].version != timer.payload["version"] or found[0].stage == Stage.retirement:
        return  # upgraded, retired or gone since
    c = found[0]
    ends = c.end_of_support.isoformat()
    verb = "ended" if now.date() >= c.end_of_support else "ends"
    message = Message(
        title=f"end of life: {c.name} {c.version}",
        summary=f"Support of {c.name} {c.version} {verb} {ends} ({c.support}); plan the migration. "
        f"Owner: {c.owner}.",
        state=NOTICE,
        url=f"{base}/api/v1/lifecycle/review",
        details=["The annual technology review list: maintd lifecycle review"],
    )
    _send(session, timer, now, catalog, c.owner, NOTICE, message)
    payload = {"component": c.name, "version": c.version, "end_of_support": ends, "owner": c.owner}
    append(session, Event(EOL_NOTICE, timer.subject, now, SYSTEM, payload))


def _send(
    session: Session,
    timer: TimerRow,
    now: datetime,
    catalog: Catalog,
    person: str,
    state: str,
    message: Message,
) -> None:
    enqueue(
        session,
        subject=timer.subject,
        incident_id=None,
        recipient=_recipient(catalog, person),
        state=state,
        step=timer.step,
        message=message,
        now=now,
    )
