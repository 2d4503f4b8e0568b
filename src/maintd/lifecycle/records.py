"""The lifecycle's events and what it reads of the stored plan.

Everything that happens is an event (append-only, with its actor); nothing here has a table
of its own. Subjects: ``component:NAME``, ``doc:NAME``, ``training:PERSON/TRAINING``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from maintd.plan.lifecycle import Component, Document, Training
from maintd.plan.models import Plan
from maintd.plan.oncall import Person
from maintd.store.models import EventRow, PlanVersionRow

TRANSITION = "lifecycle.transition"
EOL_NOTICE = "lifecycle.eol_notice"
REVIEWED = "docs.reviewed"
CHANGED = "docs.changed"  # something a document covers is defined differently by a new plan
REGISTERED = "docs.registered"  # a document first appeared in an activated plan
DOC_REMINDED = "docs.reminded"
COMPLETED = "training.completed"
TRAINING_REMINDED = "training.reminded"
SECTIONS = ("components", "documents", "trainings", "people")


class LifecycleError(Exception):
    """A recording the rules refuse (a stage that does not follow, a training not required)."""


class NotFound(LifecycleError):
    """No such component, document, training or person in the active plan."""


def component_subject(name: str) -> str:
    return f"component:{name}"


def doc_subject(name: str) -> str:
    return f"doc:{name}"


def training_subject(person: str, training: str) -> str:
    return f"training:{person}/{training}"


@dataclass(frozen=True)
class Catalog:
    """What the plan declares about the lifecycle, and who the people are."""

    components: list[Component]
    documents: list[Document]
    trainings: list[Training]
    people: list[Person]

    @classmethod
    def of(cls, plan: Plan) -> Catalog:
        return cls(list(plan.components), list(plan.documents), list(plan.trainings), list(plan.people))

    @classmethod
    def stored(cls, session: Session, *, until: datetime | None = None) -> Catalog:
        """The sections of the active plan (of the last plan loaded by ``until``); empty when none."""
        # Only these sections: the stored plan can be megabytes (every target and task).
        stmt = select(*(PlanVersionRow.document[s] for s in SECTIONS)).order_by(PlanVersionRow.id.desc())
        if until is not None:
            stmt = stmt.where(PlanVersionRow.loaded_at <= until)
        row = session.execute(stmt.limit(1)).first()
        return cls.from_sections(dict(zip(SECTIONS, row, strict=True)) if row else {})

    @classmethod
    def from_sections(cls, sections: dict[str, Any]) -> Catalog:
        try:
            return cls(
                [Component.model_validate(c) for c in sections.get("components") or []],
                [Document.model_validate(d) for d in sections.get("documents") or []],
                [Training.model_validate(t) for t in sections.get("trainings") or []],
                [Person.model_validate(p) for p in sections.get("people") or []],
            )
        except ValidationError as exc:  # a plan stored by an older maintd
            raise LifecycleError(f"the stored plan's lifecycle sections do not validate: {exc}") from None

    def component(self, name: str) -> Component:
        for c in self.components:
            if c.name == name:
                return c
        raise NotFound(f"no component {name!r} in the active plan")

    def document(self, name: str) -> Document:
        for d in self.documents:
            if d.name == name:
                return d
        raise NotFound(f"no document {name!r} in the active plan")

    def training(self, name: str) -> Training:
        for t in self.trainings:
            if t.name == name:
                return t
        raise NotFound(f"no training {name!r} in the active plan")

    def person(self, name: str) -> Person:
        for p in self.people:
            if p.name == name:
                return p
        raise NotFound(f"no person {name!r} in the active plan")


def events(
    session: Session, kinds: Sequence[str], *, subject: str | None = None, until: datetime | None = None
) -> list[EventRow]:
    """Events of ``kinds`` (of one subject; up to ``until``), oldest first."""
    stmt = select(EventRow).where(EventRow.kind.in_(list(kinds)))
    if subject is not None:
        stmt = stmt.where(EventRow.subject == subject)
    if until is not None:
        stmt = stmt.where(EventRow.at <= until)
    return list(session.scalars(stmt.order_by(EventRow.at, EventRow.id)))
