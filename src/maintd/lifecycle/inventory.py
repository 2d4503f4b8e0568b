"""The component inventory: each component's stage and version in use, from the plan and the
transitions recorded since; the stage transition table; the annual technology review list.

A recorded transition wins over the plan until the plan's own declaration of that component
(stage, version in use) changes: editing the plan is a newer statement than the record.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from pydantic import BaseModel
from sqlalchemy.orm import Session

from maintd.lifecycle.policy import Support, VersionStatus, statuses
from maintd.lifecycle.records import TRANSITION, Catalog, component_subject, events
from maintd.plan.lifecycle import Component, Stage, Version
from maintd.store.models import EventRow

# The seed's chain forward, one step back where a team may return (a failed staging goes back to
# testing, maintenance returns to production, a deprecation is withdrawn); retirement is final.
TRANSITIONS: dict[Stage, frozenset[Stage]] = {
    Stage.development: frozenset({Stage.testing}),
    Stage.testing: frozenset({Stage.staging, Stage.development}),
    Stage.staging: frozenset({Stage.production, Stage.testing}),
    Stage.production: frozenset({Stage.maintenance, Stage.deprecation}),
    Stage.maintenance: frozenset({Stage.production, Stage.deprecation}),
    Stage.deprecation: frozenset({Stage.retirement, Stage.maintenance}),
    Stage.retirement: frozenset(),
}


class VersionStatusView(BaseModel):
    version: str
    released: date
    end_of_support: date
    support: Support


class ComponentState(BaseModel):
    name: str
    owner: str
    category: str
    stage: Stage
    version: str  # in use
    released: date
    end_of_support: date
    support: Support
    notice_from: date  # six months before the end of support
    on_notice: bool  # the end-of-life notice is due (and the component is not retired)
    since: datetime | None  # the last transition recorded, if any since the plan said otherwise
    versions: list[VersionStatusView]


@dataclass(frozen=True)
class Declared:
    """A component's stage and version in use: the plan's, or the last transition's."""

    stage: Stage
    version: str
    versions: list[Version]
    since: datetime | None


def in_use(component: Component) -> str:
    if component.in_use is not None:
        return component.in_use
    return max(component.versions, key=lambda v: v.released).version


def declared(component: Component, transitions: list[EventRow]) -> Declared:
    """Apply the component's recorded transitions (oldest first) to what the plan says."""
    versions = list(component.versions)
    stage, version, since = component.stage, in_use(component), None
    for event in transitions:
        p = event.payload
        if p.get("plan_stage") != component.stage or p.get("plan_version") != in_use(component):
            continue  # recorded against another declaration: the plan was edited since
        stage, version, since = Stage(p["to"]), str(p["version"]), event.at
        if version not in {v.version for v in versions}:
            versions.append(Version(version=version, released=date.fromisoformat(p["released"])))
    return Declared(stage, version, versions, since)


def state(component: Component, transitions: list[EventRow], today: date) -> ComponentState:
    d = declared(component, transitions)
    views = statuses(d.versions, today)
    current = next(v for v in views if v.version == d.version)
    return ComponentState(
        name=component.name,
        owner=component.owner,
        category=component.category,
        stage=d.stage,
        version=d.version,
        released=current.released,
        end_of_support=current.end_of_support,
        support=current.support,
        notice_from=current.notice_from,
        on_notice=d.stage != Stage.retirement and today >= current.notice_from,
        since=d.since,
        versions=[_view(v) for v in views],
    )


def _view(v: VersionStatus) -> VersionStatusView:
    return VersionStatusView(
        version=v.version, released=v.released, end_of_support=v.end_of_support, support=v.support
    )


def states(session: Session, catalog: Catalog, now: datetime) -> list[ComponentState]:
    """Every component of the plan, in plan order."""
    by_subject: dict[str, list[EventRow]] = {}
    for event in events(session, [TRANSITION], until=now):
        by_subject.setdefault(event.subject, []).append(event)
    return [state(c, by_subject.get(component_subject(c.name), []), now.date()) for c in catalog.components]


def review_list(session: Session, catalog: Catalog, now: datetime) -> list[ComponentState]:
    """The annual technology review: components not retired, by area, soonest end of support first."""
    live = [s for s in states(session, catalog, now) if s.stage != Stage.retirement]
    return sorted(live, key=lambda s: (s.category, s.end_of_support, s.name))
