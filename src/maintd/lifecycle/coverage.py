"""What changed under a document: its covered targets, tasks and components, between stored plan
versions, and components' recorded transitions."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from maintd.lifecycle.records import TRANSITION, events
from maintd.plan.lifecycle import Document
from maintd.store.models import PlanVersionRow

COVERED = ("targets", "tasks", "components")


@dataclass(frozen=True)
class Change:
    at: datetime
    cause: str


@dataclass
class History:
    """Changes by (section, name), and when each document first appeared in a stored plan."""

    changes: dict[tuple[str, str], list[Change]]
    first_seen: dict[str, datetime]

    def under(self, doc: Document) -> list[Change]:
        """Every change to what ``doc`` covers, oldest first."""
        found = [
            change
            for section in COVERED
            for name in getattr(doc.covers, section)
            for change in self.changes.get((section, name), [])
        ]
        return sorted(found, key=lambda c: c.at)


def history(session: Session, documents: Iterable[Document], *, until: datetime) -> History:
    wanted: dict[str, set[str]] = {s: set() for s in COVERED}
    for doc in documents:
        for section in COVERED:
            wanted[section].update(getattr(doc.covers, section))
    out = History({}, {})
    _plan_changes(session, wanted, until, out)
    for event in events(session, [TRANSITION], until=until):
        name = event.subject.removeprefix("component:")
        if name in wanted["components"]:
            p = event.payload
            cause = f"component {name}: {p.get('from')} → {p.get('to')}, version {p.get('version')}"
            out.changes.setdefault(("components", name), []).append(Change(event.at, cause))
    return out


def _plan_changes(session: Session, wanted: dict[str, set[str]], until: datetime, out: History) -> None:
    """An item whose stored definition differs from the plan version before: a change at the load."""
    columns = [PlanVersionRow.document[s] for s in (*COVERED, "documents")]
    stmt = (
        select(PlanVersionRow.loaded_at, *columns)
        .where(PlanVersionRow.loaded_at <= until)
        .order_by(PlanVersionRow.loaded_at, PlanVersionRow.id)
    )
    before: dict[tuple[str, str], str] = {}
    for loaded_at, *sections in session.execute(stmt):
        now: dict[tuple[str, str], str] = {}
        for section, items in zip(COVERED, sections[:3], strict=True):
            for item in items or []:
                if isinstance(item, dict) and item.get("name") in wanted[section]:
                    now[(section, item["name"])] = json.dumps(item, sort_keys=True)
        for key, text in now.items():
            if key in before and before[key] != text:
                cause = f"{key[0][:-1]} {key[1]} changed in the plan"
                out.changes.setdefault(key, []).append(Change(loaded_at, cause))
        before = now
        for doc in sections[3] or []:
            if isinstance(doc, dict) and isinstance(doc.get("name"), str):
                out.first_seen.setdefault(doc["name"], loaded_at)
