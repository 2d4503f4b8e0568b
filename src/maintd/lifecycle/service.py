"""Recording what happens: a stage transition (or release), a document reviewed, a training
completed. One event each, with its actor; then the timers the new state calls for. The caller
owns the transaction (these only flush)."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy.orm import Session

from maintd.lifecycle import documents, inventory, reminders, training
from maintd.lifecycle.dates import midnight
from maintd.lifecycle.policy import parse
from maintd.lifecycle.records import (
    COMPLETED,
    REVIEWED,
    TRANSITION,
    Catalog,
    LifecycleError,
    component_subject,
    doc_subject,
    events,
    training_subject,
)
from maintd.plan.lifecycle import Stage
from maintd.store.events import Event, append

MAX_NOTE = 4000


def transition(
    session: Session,
    catalog: Catalog,
    *,
    component: str,
    to: Stage | None,
    version: str | None = None,
    released: date | None = None,
    note: str = "",
    actor: str,
    now: datetime,
) -> inventory.ComponentState:
    """Move a component to the next stage (by the transition table) and/or to another version."""
    declared = catalog.component(component)
    subject = component_subject(component)
    before = inventory.declared(declared, events(session, [TRANSITION], subject=subject, until=now))
    if to is None and version is None:
        raise LifecycleError("nothing to record: give a stage to move to, a version, or both")
    if before.stage == Stage.retirement:
        raise LifecycleError(f"{component} is retired: a retired component does not change")
    target = to or before.stage
    if to is not None and to != before.stage and to not in inventory.TRANSITIONS[before.stage]:
        allowed = ", ".join(sorted(inventory.TRANSITIONS[before.stage])) or "none"
        raise LifecycleError(
            f"{component}: {before.stage} → {to} is not a lifecycle step (from {before.stage}: {allowed})"
        )
    new_version = version or before.version
    listed = {v.version: v for v in before.versions}
    if new_version in listed:
        release_day = listed[new_version].released
    else:
        try:
            parse(new_version)
        except ValueError:
            raise LifecycleError(f"{new_version!r} is not a version: write MAJOR.MINOR.PATCH") from None
        if released is None:
            raise LifecycleError(f"version {new_version} is not in the plan: give its release date")
        release_day = released
    if target == before.stage and new_version == before.version:
        raise LifecycleError(f"{component} is already {before.stage} at {before.version}: nothing changes")
    payload = {
        "from": before.stage.value,
        "to": target.value,
        "previous_version": before.version,
        "version": new_version,
        "released": release_day.isoformat(),
        "plan_stage": declared.stage.value,
        "plan_version": inventory.in_use(declared),
        "note": note[:MAX_NOTE],
    }
    append(session, Event(TRANSITION, subject, now, actor, payload))
    reminders.schedule_all(session, catalog, now)
    return next(s for s in inventory.states(session, catalog, now) if s.name == component)


def reviewed(
    session: Session, catalog: Catalog, *, document: str, note: str = "", actor: str, now: datetime
) -> documents.DocStatus:
    """Record a review of a document: it is current again and its cadence counts from now."""
    doc = catalog.document(document)
    (before,) = [d for d in documents.statuses(session, catalog, until=now) if d.name == doc.name]
    payload: dict[str, object] = {"note": note[:MAX_NOTE], "owner": doc.owner}
    if before.stale_since is not None:
        payload["stale_since"] = before.stale_since.isoformat()
        payload["within_48h"] = now - before.stale_since <= documents.CURRENCY_WINDOW
    append(session, Event(REVIEWED, doc_subject(doc.name), now, actor, payload))
    reminders.schedule_all(session, catalog, now)
    (after,) = [d for d in documents.statuses(session, catalog, until=now) if d.name == doc.name]
    return after


def completed(
    session: Session,
    catalog: Catalog,
    *,
    person: str,
    training_name: str,
    completed_on: date | None = None,
    note: str = "",
    actor: str,
    now: datetime,
) -> training.TrainingStatus:
    """Record that ``person`` completed a training the matrix requires of them (on a past day)."""
    who = catalog.person(person)
    course = catalog.training(training_name)
    if not set(course.roles) & set(who.roles):
        raise LifecycleError(
            f"{person}'s roles ({', '.join(who.roles) or 'none'}) do not require {training_name} "
            f"(required of: {', '.join(course.roles)})"
        )
    if completed_on is not None and completed_on > now.date():
        raise LifecycleError(f"{completed_on} is in the future: record a training once it is completed")
    at = now if completed_on is None or completed_on == now.date() else midnight(completed_on)
    payload = {
        "person": person,
        "training": training_name,
        "completed_at": at.isoformat(),
        "note": note[:MAX_NOTE],
    }
    append(session, Event(COMPLETED, training_subject(person, training_name), now, actor, payload))
    reminders.schedule_all(session, catalog, now)
    (status,) = [
        s
        for s in training.statuses(session, catalog, at=now)
        if (s.person, s.training) == (person, training_name)
    ]
    return status
