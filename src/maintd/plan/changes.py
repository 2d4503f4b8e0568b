"""Plan settings for change management: the approval matrix, the procedures a change may run,
the health watch and the change freeze.

Change types not configured keep the seed's defaults (``SEED_TYPES``); a type configured
under a seed type's name replaces it. Procedures are the only commands a change runs:
argument lists reviewed in the plan, with ``{placeholders}`` a request fills in, so an
API caller can never make maintd run a command of their own.
"""

from __future__ import annotations

import re
from datetime import timedelta
from enum import StrEnum
from typing import Annotated, Literal, Self

from pydantic import Field, StringConstraints, field_validator, model_validator

from maintd.plan.base import StrictModel
from maintd.plan.types import Duration

Name = Annotated[
    str,
    StringConstraints(pattern=r"^[a-z0-9][a-z0-9_.-]{0,62}$"),
    Field(description="lower-case letters, digits, '-', '_' and '.', at most 63 characters"),
]
# Token roles that may approve (maintd.auth.Role, by value: the plan does not import the store).
ApproverRole = Literal["responder", "team-lead", "manager", "director", "admin"]
PLACEHOLDER = re.compile(r"\{([a-z_][a-z0-9_]*)\}")
BUILTIN_PLACEHOLDERS = frozenset({"change", "target", "type"})  # filled by maintd, not the request
Command = Annotated[
    list[Annotated[str, StringConstraints(min_length=1, max_length=4096)]],
    Field(min_length=1, max_length=256, description="an argument list (never a shell string)"),
]


class Approval(StrictModel):
    """``count`` different people whose token role is ``role`` or above."""

    role: ApproverRole = Field(description="token role: responder, team-lead, manager, director or admin")
    count: int = Field(default=1, ge=1, le=20, description="how many different people of that role or above")


class EvidenceKind(StrEnum):
    run = "run"  # the id of a maintd run that finished ok (a test suite, a staging validation)
    link = "link"  # an http(s) URL (a proof of concept, a CAB minute)


class Evidence(StrictModel):
    name: Name = Field(description="the key a change request gives it under, e.g. staging-validation")
    kind: EvidenceKind = Field(description="run: a maintd run id that finished ok; link: an http(s) URL")
    description: str = Field(default="", description="what it should show, for the requester")


class Watch(StrictModel):
    """After a change is applied: re-run ``checks`` every ``interval`` for ``window``."""

    window: Duration = Field(default=timedelta(minutes=5), description="how long the health watch lasts")
    interval: Duration = Field(default=timedelta(minutes=1), description="how often the checks run in it")
    checks: list[Name] = Field(
        default=[], description="tasks of the plan (checks) to watch; a change request may name others"
    )
    max_errors: int = Field(
        default=0,
        ge=0,
        le=1000,
        description="unknown results (the check itself failed) tolerated in a watch; one more rolls back. "
        "A critical result always rolls back",
    )

    @model_validator(mode="after")
    def _positive(self) -> Self:
        if self.interval <= timedelta(0) or self.window <= timedelta(0):
            raise ValueError("watch window and interval must be longer than 0s")
        if self.interval > self.window:
            raise ValueError(
                f"the watch interval ({self.interval}) is longer than its window ({self.window})"
            )
        return self


class ChangeType(StrictModel):
    description: str = Field(default="", description="what changes of this type are")
    approvals: list[Approval] = Field(
        default=[], description="who must approve; none: pre-approved (a standard change)"
    )
    evidence: list[Evidence] = Field(default=[], description="what a request must show before approval")
    freeze_exempt: bool = Field(
        default=False, description="may run while a P0/P1 incident is open, without a director's override"
    )
    procedures: list[Name] | None = Field(
        default=None, description="the only procedures changes of this type may run; unset: any"
    )
    watch: Watch | None = Field(default=None, description="this type's health watch; unset: the section's")


class Procedure(StrictModel):
    """The commands of one kind of change. ``{target}`` is each target in turn, ``{change}`` the
    change's id, ``{type}`` its type; other ``{name}``s are the request's params."""

    name: Name
    description: str = Field(default="", description="what it does, for approvers")
    apply: Command = Field(description="run once per target (canary targets first); exit 0 = applied")
    rollback: Command = Field(description="undo: run once per applied target, last applied first")
    snapshot: Command | None = Field(
        default=None, description="capture the state before; unset: the section's snapshot command"
    )
    timeout: Duration = Field(default=timedelta(minutes=10), description="each command is stopped after this")

    @property
    def params(self) -> set[str]:
        """The placeholders a request must fill in."""
        found: set[str] = set()
        for command in (self.apply, self.rollback, self.snapshot or []):
            for arg in command:
                found.update(PLACEHOLDER.findall(arg))
        return found - BUILTIN_PLACEHOLDERS


def _seed_types() -> dict[str, ChangeType]:
    """The seed's approval matrix. On-call is the responder role; the change board (a CAB meeting)
    is two managers; testing becomes the evidence a request carries."""

    def run(name: str, description: str) -> Evidence:
        return Evidence(name=name, kind=EvidenceKind.run, description=description)

    return {
        "critical-security-patch": ChangeType(
            description="a security fix that cannot wait for the next window",
            approvals=[Approval(role="responder"), Approval(role="manager")],
            evidence=[run("staging-validation", "a run validating the patch in staging")],
        ),
        "configuration-update": ChangeType(
            description="a configuration change",
            approvals=[Approval(role="team-lead")],
            evidence=[run("test-suite", "a run of the full test suite")],
        ),
        "major-version-update": ChangeType(
            description="a major version of a component (Kubernetes, a database, a framework)",
            approvals=[Approval(role="manager", count=2)],
            evidence=[run("regression", "a run of the full regression suite")],
        ),
        "architecture-change": ChangeType(
            description="a change of architecture",
            approvals=[Approval(role="director")],
            evidence=[Evidence(name="proof-of-concept", kind=EvidenceKind.link, description="the PoC")],
        ),
        "standard": ChangeType(
            description="a pre-approved routine change: only the procedures listed here",
            procedures=[],
        ),
    }


SEED_TYPES = _seed_types()


PROPOSAL_PARAMS = frozenset({"package", "from", "to", "file"})  # what a scan's propose-update carries


class SecurityUpdates(StrictModel):
    """Patch updates a security-scan task proposes become draft change requests."""

    type: Name = Field(default="critical-security-patch", description="the change type of the drafts")
    procedure: Name = Field(
        description="the procedure the drafts run; its params come from the proposal: package, from, to, file"
    )
    targets: list[Name] = Field(default=[], description="the drafts' targets; unset: the scanned target")
    checks: list[Name] | None = Field(default=None, description="tasks to watch; unset: the type's")


class ChangeSettings(StrictModel):
    """The ``changes:`` section."""

    types: dict[Name, ChangeType] = Field(
        default={}, description="change types by name; the seed's five are there unless replaced"
    )
    procedures: list[Procedure] = Field(default=[], description="the commands changes run, by name")
    snapshot: Command | None = Field(
        default=None, description="capture the state before any change (a procedure may have its own)"
    )
    watch: Watch = Field(default=Watch(), description="the health watch of types without their own")
    freeze_priorities: list[Literal["P0", "P1", "P2", "P3"]] = Field(
        default=["P0", "P1"], description="an open incident of these priorities freezes changes"
    )
    output_limit: int = Field(default=65_536, ge=256, description="bytes of each command's output kept")
    security_updates: SecurityUpdates | None = Field(
        default=None, description="draft a change request for each patch update a security scan proposes"
    )

    @field_validator("procedures")
    @classmethod
    def _unique(cls, value: list[Procedure]) -> list[Procedure]:
        names = [p.name for p in value]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"procedures defined twice: {', '.join(twice)}")
        return value

    @model_validator(mode="after")
    def _known_procedures(self) -> Self:
        names = {p.name for p in self.procedures}
        for type_name, change_type in self.types.items():
            unknown = sorted(set(change_type.procedures or []) - names)
            if unknown:
                raise ValueError(f"change type {type_name!r} names unknown procedures: {', '.join(unknown)}")
        return self

    @model_validator(mode="after")
    def _security_updates(self) -> Self:
        wanted = self.security_updates
        if wanted is None:
            return self
        if wanted.type not in self.all_types():
            raise ValueError(f"security_updates.type {wanted.type!r} is not a change type")
        found = [p for p in self.procedures if p.name == wanted.procedure]
        if not found:
            raise ValueError(f"security_updates.procedure {wanted.procedure!r} is not a procedure")
        if stray := sorted(found[0].params - PROPOSAL_PARAMS):
            raise ValueError(
                f"procedure {wanted.procedure!r} needs params a proposal does not carry: {', '.join(stray)} "
                f"(it carries {', '.join(sorted(PROPOSAL_PARAMS))})"
            )
        return self

    def all_types(self) -> dict[str, ChangeType]:
        return {**SEED_TYPES, **self.types}

    def type(self, name: str) -> ChangeType:
        found = self.all_types().get(name)
        if found is None:
            raise KeyError(name)
        return found

    def procedure(self, name: str) -> Procedure:
        for procedure in self.procedures:
            if procedure.name == name:
                return procedure
        raise KeyError(name)

    def watch_of(self, change_type: ChangeType) -> Watch:
        return change_type.watch or self.watch
