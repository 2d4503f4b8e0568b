"""The training matrix: role → required training → frequency; who completed what, who is overdue.

A person must take every training required of one of their roles. A completion is current
until the training's frequency has passed since it (a quarterly training done on 1 March is
due again on 1 June); never completed is overdue.
"""

from __future__ import annotations

from datetime import UTC, datetime

from pydantic import BaseModel
from sqlalchemy.orm import Session

from maintd.lifecycle.dates import after
from maintd.lifecycle.records import COMPLETED, Catalog, events, training_subject
from maintd.plan.lifecycle import Training
from maintd.plan.oncall import Person


class MatrixRow(BaseModel):
    role: str
    training: str
    title: str
    every: str
    people: list[str]


class TrainingStatus(BaseModel):
    person: str
    training: str
    title: str
    every: str
    completed_at: datetime | None
    due_at: datetime | None  # None: never completed, due now
    current: bool


def required(catalog: Catalog) -> list[tuple[Person, Training]]:
    """Every (person, training) the matrix asks for, people in plan order."""
    return [
        (person, training)
        for person in catalog.people
        for training in catalog.trainings
        if set(training.roles) & set(person.roles)
    ]


def matrix(catalog: Catalog) -> list[MatrixRow]:
    rows = []
    for training in catalog.trainings:
        for role in training.roles:
            people = [p.name for p in catalog.people if role in p.roles]
            rows.append(
                MatrixRow(
                    role=role,
                    training=training.name,
                    title=training.title,
                    every=training.every,
                    people=people,
                )
            )
    return sorted(rows, key=lambda r: (r.role, r.training))


def completions(session: Session, *, until: datetime) -> dict[str, datetime]:
    """The latest completion by subject (``training:PERSON/TRAINING``) recorded by ``until``."""
    latest: dict[str, datetime] = {}
    for event in events(session, [COMPLETED], until=until):
        done = datetime.fromisoformat(event.payload["completed_at"]).astimezone(UTC)
        if done <= until and done > latest.get(event.subject, datetime.min.replace(tzinfo=UTC)):
            latest[event.subject] = done
    return latest


def statuses(session: Session, catalog: Catalog, *, at: datetime) -> list[TrainingStatus]:
    done = completions(session, until=at)
    out = []
    for person, training in required(catalog):
        last = done.get(training_subject(person.name, training.name))
        due = after(last, training.every) if last is not None else None
        out.append(
            TrainingStatus(
                person=person.name,
                training=training.name,
                title=training.title,
                every=training.every,
                completed_at=last,
                due_at=due,
                current=due is not None and due > at,
            )
        )
    return out


def completion(session: Session, catalog: Catalog, *, at: datetime) -> tuple[int, int]:
    """(people whose every required training is current at ``at``, people with any required)."""
    by_person: dict[str, bool] = {}
    for s in statuses(session, catalog, at=at):
        by_person[s.person] = by_person.get(s.person, True) and s.current
    return sum(by_person.values()), len(by_person)
