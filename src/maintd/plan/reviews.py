"""Plan section ``reviews``: recurring reviews worked through as a checklist, the seed's quarterly
architecture review by default.

::

    reviews:
      - name: architecture
        owner: ann                          # opens, completes; reminded when it opens
        participants: [bob]                 # told when it opens
        # cadence: quarterly                # monthly, quarterly, biannual or annual
        # areas: the seed's six unless given: [scalability, security-architecture, cost,
        #        technical-debt, performance, compliance]
        findings: {remind_before: 2d, overdue_every: 1d, overdue_reminders: 7}

What happens (a review opened, an area reviewed, a finding and its action item) is recorded
by ``maintd review`` and ``/api/v1/reviews`` (maintd.reviews), never by editing the plan.
"""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import BeforeValidator, Field, field_validator

from maintd.plan.base import StrictModel
from maintd.plan.oncall import Loc, Name
from maintd.plan.postmortems import PostmortemSettings

if TYPE_CHECKING:
    from maintd.plan.models import Plan


class ReviewCadence(StrEnum):
    """A calendar period: one review per month, quarter, half-year or year (UTC)."""

    monthly = "monthly"
    quarterly = "quarterly"
    biannual = "biannual"
    annual = "annual"


class ReviewArea(StrictModel):
    """One checklist line: an area the review must look at before it can complete."""

    name: Name
    title: str = Field(default="", max_length=200, description="what to look at; the name when empty")


def _area(value: Any) -> Any:
    return {"name": value} if isinstance(value, str) else value


# The seed's "Architecture Review" areas, in its order.
ARCHITECTURE_AREAS = (
    ReviewArea(name="scalability", title="Scalability assessment"),
    ReviewArea(name="security-architecture", title="Security architecture"),
    ReviewArea(name="cost", title="Cost optimization opportunities"),
    ReviewArea(name="technical-debt", title="Technical debt evaluation"),
    ReviewArea(name="performance", title="Performance bottlenecks"),
    ReviewArea(name="compliance", title="Compliance requirements"),
)


class Review(StrictModel):
    name: Name
    title: str = Field(default="", max_length=200, description="its heading; 'NAME review' when empty")
    cadence: ReviewCadence = Field(
        default=ReviewCadence.quarterly, description="one review per calendar period (UTC)"
    )
    owner: Name = Field(description="a person of the plan: reminded when it opens")
    participants: list[Name] = Field(default=[], description="people of the plan told when it opens")
    areas: list[Annotated[ReviewArea, BeforeValidator(_area, json_schema_input_type=ReviewArea | Name)]] = (
        Field(
            default=list(ARCHITECTURE_AREAS),
            description="the checklist: names or {name, title}; the seed's six architecture areas if omitted",
        )
    )
    findings: PostmortemSettings = Field(
        default=PostmortemSettings(),
        description="when the action items of findings remind their owners (as for post-mortem actions)",
    )

    @field_validator("areas")
    @classmethod
    def _areas(cls, value: list[ReviewArea]) -> list[ReviewArea]:
        if not value:
            raise ValueError("a review needs at least one area to check")
        names = [a.name for a in value]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"area names must be unique; twice: {twice}")
        return value

    @property
    def heading(self) -> str:
        return self.title or f"{self.name} review"


def review_problems(plan: Plan) -> list[tuple[Loc, str]]:
    """Unique review names; owners and participants are people of the plan."""
    problems: list[tuple[Loc, str]] = []
    people = {p.name for p in plan.people}
    seen: set[str] = set()
    for i, review in enumerate(plan.reviews):
        if review.name in seen:
            problems.append((("reviews", i, "name"), f"review {review.name!r} is defined twice"))
        seen.add(review.name)
        if review.owner not in people:
            problems.append((("reviews", i, "owner"), f"unknown person {review.owner!r}"))
        for j, name in enumerate(review.participants):
            if name not in people:
                problems.append((("reviews", i, "participants", j), f"unknown person {name!r}"))
    return problems
