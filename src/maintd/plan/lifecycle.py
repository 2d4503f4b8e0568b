"""Lifecycle plan sections: ``components`` (inventory and versions), ``documents`` (the documentation
registry) and ``trainings`` (the training matrix).

::

    components:
      - name: api
        owner: ann
        category: framework                 # the annual review's areas
        stage: production
        versions:                           # the one in use: the newest release unless ``in_use``
          - {version: "3.2.0", released: 2026-06-01}
          - {version: "3.1.0", released: 2025-12-01}
    documents:
      - name: api-runbook
        kind: runbook                       # weekly review; architecture monthly, audit quarterly, ...
        owner: ann
        covers: {components: [api], tasks: [api-health]}
    trainings:
      - name: incident-response
        roles: [oncall]
        every: quarterly

The plan says what exists and is required; what happens (a stage transition, a review, a
training completed) is recorded as events by ``maintd lifecycle|docs|training``
(maintd.lifecycle), never by editing the plan.
"""

from __future__ import annotations

import re
from datetime import date
from enum import StrEnum
from typing import TYPE_CHECKING, Self

from pydantic import Field, field_validator, model_validator

from maintd.plan.base import StrictModel
from maintd.plan.oncall import Loc, Name

if TYPE_CHECKING:
    from maintd.plan.models import Plan


class Stage(StrEnum):
    """The seed's component lifecycle, in order."""

    development = "development"
    testing = "testing"
    staging = "staging"
    production = "production"
    maintenance = "maintenance"
    deprecation = "deprecation"
    retirement = "retirement"


class Cadence(StrEnum):
    """How often: calendar steps (a month is the same day next month, not 30 days)."""

    weekly = "weekly"
    monthly = "monthly"
    quarterly = "quarterly"
    biannual = "biannual"
    annual = "annual"


class ReviewArea(StrEnum):
    """The seed's annual technology review areas."""

    framework = "framework"  # language / framework versions
    infrastructure = "infrastructure"
    security = "security"
    monitoring = "monitoring"
    development = "development"  # development tools


class DocumentKind(StrEnum):
    runbook = "runbook"
    architecture = "architecture"
    audit = "audit"
    refresh = "refresh"
    playbook = "playbook"
    guide = "guide"


# The seed's review schedule: runbooks weekly, architecture diagrams monthly, the full audit
# quarterly, the complete refresh annually. Playbooks and guides are our own choice.
DEFAULT_CADENCE = {
    DocumentKind.runbook: Cadence.weekly,
    DocumentKind.architecture: Cadence.monthly,
    DocumentKind.audit: Cadence.quarterly,
    DocumentKind.refresh: Cadence.annual,
    DocumentKind.playbook: Cadence.monthly,
    DocumentKind.guide: Cadence.quarterly,
}

VERSION = re.compile(r"^v?(\d+)(?:\.(\d+))?(?:\.(\d+))?(?:[-+][0-9A-Za-z.-]+)?$")


class Version(StrictModel):
    version: str = Field(description="MAJOR[.MINOR[.PATCH]], e.g. 3.2.1 or 15; a 'v' prefix is allowed")
    released: date = Field(description="release date: the support window counts from it")
    end_of_support: date | None = Field(
        default=None, description="overrides the policy (major 2 years, minor 1 year) when the vendor says"
    )

    @field_validator("version")
    @classmethod
    def _semver(cls, value: str) -> str:
        if not VERSION.match(value):
            raise ValueError(f"{value!r} is not a version: write MAJOR.MINOR.PATCH, e.g. 3.2.1")
        return value


class Component(StrictModel):
    name: Name
    description: str = ""
    owner: Name = Field(description="a person of the plan: EOL notices go to them")
    category: ReviewArea = Field(
        default=ReviewArea.infrastructure, description="its area in the annual technology review"
    )
    stage: Stage = Field(default=Stage.production, description="its stage when the plan was written")
    versions: list[Version] = Field(description="its releases; the one in use is the newest unless 'in_use'")
    in_use: str | None = Field(default=None, description="the version running, when not the newest release")
    targets: list[Name] = Field(default=[], description="targets of the plan this component runs as")

    @field_validator("versions")
    @classmethod
    def _some(cls, value: list[Version]) -> list[Version]:
        if not value:
            raise ValueError("a component needs at least one version")
        names = [v.version for v in value]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"versions must be unique; twice: {twice}")
        return value

    @model_validator(mode="after")
    def _in_use_listed(self) -> Self:
        if self.in_use is not None and self.in_use not in {v.version for v in self.versions}:
            raise ValueError(f"version in use {self.in_use!r} is not among the versions")
        return self


class Covers(StrictModel):
    """What a document describes: when one of these changes, the document is stale until reviewed."""

    targets: list[Name] = []
    tasks: list[Name] = []
    components: list[Name] = []


class Document(StrictModel):
    name: Name
    title: str = ""
    kind: DocumentKind = Field(description="runbook, architecture, audit, refresh, playbook or guide")
    owner: Name = Field(description="a person of the plan: reminders go to them")
    cadence: Cadence | None = Field(default=None, description="review cadence; none: the kind's default")
    location: str = Field(default="", description="where it lives: a path or URL")
    covers: Covers = Field(default=Covers(), description="targets, tasks and components it describes")
    last_reviewed: date | None = Field(
        default=None, description="its last review before maintd recorded reviews; none: when first loaded"
    )

    @property
    def review_every(self) -> Cadence:
        return self.cadence or DEFAULT_CADENCE[self.kind]


class Training(StrictModel):
    name: Name
    title: str = ""
    roles: list[Name] = Field(description="everyone with one of these roles must take it")
    every: Cadence = Field(default=Cadence.annual, description="how often it must be taken again")

    @field_validator("roles")
    @classmethod
    def _some(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("a training is required of at least one role")
        return value


def lifecycle_problems(plan: Plan) -> list[tuple[Loc, str]]:
    """Unique names; owners are people; covered targets, tasks, components exist; roles are held."""
    problems: list[tuple[Loc, str]] = []
    people = {p.name for p in plan.people}
    roles = {role for p in plan.people for role in p.roles}
    targets = {t.name for t in plan.targets}
    tasks = {t.name for t in plan.tasks}
    components = {c.name for c in plan.components}
    for key, names in (
        ("components", [c.name for c in plan.components]),
        ("documents", [d.name for d in plan.documents]),
        ("trainings", [t.name for t in plan.trainings]),
    ):
        seen: set[str] = set()
        for i, name in enumerate(names):
            if name in seen:
                problems.append(((key, i, "name"), f"{key[:-1]} {name!r} is defined twice"))
            seen.add(name)
    for i, component in enumerate(plan.components):
        if component.owner not in people:
            problems.append((("components", i, "owner"), f"unknown person {component.owner!r}"))
        for j, name in enumerate(component.targets):
            if name not in targets:
                problems.append((("components", i, "targets", j), f"unknown target {name!r}"))
    for i, doc in enumerate(plan.documents):
        if doc.owner not in people:
            problems.append((("documents", i, "owner"), f"unknown person {doc.owner!r}"))
        for what, known in (("targets", targets), ("tasks", tasks), ("components", components)):
            for j, name in enumerate(getattr(doc.covers, what)):
                if name not in known:
                    problems.append((("documents", i, "covers", what, j), f"unknown {what[:-1]} {name!r}"))
    for i, training in enumerate(plan.trainings):
        for j, role in enumerate(training.roles):
            if role not in roles:
                problems.append((("trainings", i, "roles", j), f"nobody has the role {role!r}"))
    return problems
