"""What changed under a document: a covered component's recorded transition, or a covered target,
task or component defined differently by a newly activated plan.

Plan changes are found once, when the engine activates a plan version (``record_plan``: the new
plan against the stored one, only the covered items), and kept as ``docs.changed`` events; a
document new to the plan gets ``docs.registered``. Reading a document's history is then a look
at events, never a walk over every stored plan (100 versions of a 2,000-task plan took 9.5 s).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from maintd.lifecycle.records import CHANGED, REGISTERED, TRANSITION, doc_subject, events
from maintd.plan.lifecycle import Document
from maintd.plan.models import Plan
from maintd.store.events import SYSTEM, Event, append
from maintd.store.models import PlanVersionRow

COVERED = ("targets", "tasks", "components")


@dataclass(frozen=True)
class Change:
    at: datetime
    cause: str


@dataclass
class History:
    """Changes by component (transitions) and by document (plan changes), and when each document
    first appeared in an activated plan."""

    transitions: dict[str, list[Change]]
    changed: dict[str, list[Change]]
    first_seen: dict[str, datetime]
    first_plan: datetime | None  # the first plan stored: documents of plans older than this feature

    def under(self, doc: Document) -> list[Change]:
        """Every change to what ``doc`` covers, oldest first."""
        found = [c for name in doc.covers.components for c in self.transitions.get(name, [])]
        return sorted([*found, *self.changed.get(doc.name, [])], key=lambda c: c.at)

    def registered(self, doc: Document, until: datetime) -> datetime:
        return self.first_seen.get(doc.name) or self.first_plan or until


def history(session: Session, documents: Iterable[Document], *, until: datetime) -> History:
    components = {name for doc in documents for name in doc.covers.components}
    out = History({}, {}, {}, session.scalar(select(func.min(PlanVersionRow.loaded_at))))
    for event in events(session, [TRANSITION, CHANGED, REGISTERED], until=until):
        p = event.payload
        if event.kind == TRANSITION:
            name = event.subject.removeprefix("component:")
            if name in components:
                cause = f"component {name}: {p.get('from')} → {p.get('to')}, version {p.get('version')}"
                out.transitions.setdefault(name, []).append(Change(event.at, cause))
        elif event.kind == CHANGED:
            doc = event.subject.removeprefix("doc:")
            out.changed.setdefault(doc, []).append(Change(event.at, str(p.get("cause"))))
        else:
            out.first_seen.setdefault(event.subject.removeprefix("doc:"), event.at)
    return out


def record_plan(
    session: Session, previous: dict[str, Any] | None, plan: Plan, *, digest: str, now: datetime
) -> int:
    """Events for a plan being activated over ``previous`` (the stored plan's document, if any):
    ``docs.changed`` for each document whose covered items are defined differently, and
    ``docs.registered`` for each document new to the plan. How many events were added."""
    wanted = {s: {n for d in plan.documents for n in getattr(d.covers, s)} for s in COVERED}
    before = _index(previous or {}, wanted)
    now_items = {
        (section, item.name): json.dumps(item.model_dump(mode="json"), sort_keys=True)
        for section in COVERED
        for item in getattr(plan, section)
        if item.name in wanted[section]
    }
    known = {d.get("name") for d in (previous or {}).get("documents") or [] if isinstance(d, dict)}
    added: list[Event] = []
    for doc in plan.documents:
        subject = doc_subject(doc.name)
        if doc.name not in known:
            added.append(Event(REGISTERED, subject, now, SYSTEM, {"plan": digest}))
            continue
        causes = [
            f"{section[:-1]} {name} changed in the plan"
            for section in COVERED
            for name in getattr(doc.covers, section)
            if (section, name) in before and before[(section, name)] != now_items.get((section, name))
        ]
        if causes:
            cause = causes[0] + (f" (and {len(causes) - 1} more)" if len(causes) > 1 else "")
            added.append(
                Event(CHANGED, subject, now, SYSTEM, {"cause": cause, "causes": causes, "plan": digest})
            )
    append(session, added)
    return len(added)


def _index(document: dict[str, Any], wanted: dict[str, set[str]]) -> dict[tuple[str, str], str]:
    out: dict[tuple[str, str], str] = {}
    for section in COVERED:
        for item in document.get(section) or []:
            if isinstance(item, dict) and item.get("name") in wanted[section]:
                out[(section, item["name"])] = json.dumps(item, sort_keys=True)
    return out
