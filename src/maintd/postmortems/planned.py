"""What the post-mortem room reads from the active plan in the store: its settings and the people."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from maintd.plan.models import Plan
from maintd.plan.oncall import Person
from maintd.plan.postmortems import PostmortemSettings
from maintd.store.models import PlanVersionRow


def _section(session: Session, name: str) -> Any:
    # Only the section: the stored plan can be megabytes (every target and task).
    return session.scalar(select(PlanVersionRow.document[name]).order_by(PlanVersionRow.id.desc()).limit(1))


def stored_settings(session: Session) -> PostmortemSettings:
    """The active plan's post-mortem settings (the defaults when none was loaded)."""
    return PostmortemSettings.model_validate(_section(session, "postmortems") or {})


def stored_people(session: Session) -> dict[str, Person]:
    """The active plan's people, by name."""
    people = [Person.model_validate(p) for p in _section(session, "people") or []]
    return {p.name: p for p in people}


def people_and_settings(plan: Plan | None, session: Session) -> tuple[set[str], PostmortemSettings]:
    """The people and post-mortem settings of the running plan, else of the stored plan."""
    if plan is not None:
        return {p.name for p in plan.people}, plan.postmortems
    return set(stored_people(session)), stored_settings(session)
