"""The contract every remediation action implements, and the helpers they share.

An action is one module under ``maintd.remediation.actions`` exporting ``ACTION =
ActionKind(...)``: a config model (a StrictModel, every field described), a builder,
and whether it is destructive (destructive actions wait for approval unless the
playbook says ``approval: never``). ``execute(ctx)`` returns an ActionResult listing
every change as a ``Change``; in a dry run it changes nothing and lists what it would.
It raises ``Refused`` when a guardrail it applies itself says no (more objects than
the blast radius, a path outside the allowed roots); nothing was changed then.
"""

from __future__ import annotations

import re
import string
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from pydantic import BaseModel

from maintd.checks.base import Change, ProcessTracker, Resources, Status
from maintd.clock import Clock
from maintd.plan.models import Target


class Refused(Exception):
    """A guardrail the action applies itself said no, before anything changed; the message says why."""


@dataclass
class ActionResult:
    ok: bool
    output: str = ""
    changes: list[Change] = field(default_factory=list)


@dataclass(frozen=True)
class TaskOutcome:
    """A task run on behalf of remediation (a verification, a renewal): how it ended."""

    run_id: str
    status: Status
    output: str


RunTask = Callable[[str, str], Awaitable[TaskOutcome]]
"""``await run_task(task, target)``: run a plan task now on a plan target and wait for its result.
Raises Refused when the plan has no such task or target, or the task is already running there."""


class Circuits(Protocol):
    """Named circuit breakers the engine honours for its own calls (``circuit_breaker`` opens them)."""

    async def open(self, name: str, *, until: datetime, reason: str) -> None: ...

    async def open_until(self, name: str) -> datetime | None:
        """When the named circuit closes again; None while it is closed."""


@dataclass
class ActionContext:
    playbook: str
    target: str  # the execution's target key (cooldowns, one at a time)
    labels: dict[str, str]  # the alert's labels
    config: Any  # the action kind's validated config, ${label} placeholders filled in
    clock: Clock
    deadline: datetime
    resources: Resources
    run_task: RunTask
    circuits: Circuits
    plan_target: Callable[[str], Target]  # a target of the active plan (KeyError: none)
    dry_run: bool = False
    max_targets: int = 1
    processes: ProcessTracker | None = None

    def seconds_left(self) -> float:
        return max(0.0, (self.deadline - self.clock.now()).total_seconds())


class Action(Protocol):
    async def execute(self, ctx: ActionContext) -> ActionResult:
        """Act once. Raises Refused when a guardrail says no (nothing changed); anything else it
        raises is recorded as a failed execution."""


@dataclass(frozen=True)
class ActionKind:
    name: str
    config: type[BaseModel]
    build: Callable[[Any], Action]
    summary: str
    destructive: Callable[[Any], bool] = lambda _config: True


def limit_blast(what: str, selected: list[str], limit: int, *, selector: str) -> None:
    """Refuse an empty selection or one larger than the blast radius (never cut it down)."""
    if not selector.strip():
        raise Refused(f"the {what} selector is empty; an empty selector never means all")
    if not selected:
        raise Refused(f"no {what} matches {selector}")
    if len(selected) > limit:
        shown = ", ".join(selected[:5]) + (", ..." if len(selected) > 5 else "")
        raise Refused(
            f"blast radius: {selector} selects {len(selected)} {what} ({shown}); "
            f"the playbook allows at most {limit} per execution"
        )


class _Labels(string.Template):
    idpattern = r"[A-Za-z_][A-Za-z0-9_.]*"


def render(value: Any, labels: dict[str, str]) -> Any:
    """``value`` with every ``${label}`` in its strings replaced by the alert's label.

    A missing (or empty) label is refused: an action must never act on more than it was
    pointed at because a value was blank. ``$$`` is a literal ``$``.
    """
    if isinstance(value, str):
        for match in _Labels.pattern.finditer(value):
            name = match.group("named") or match.group("braced")
            if name is not None and not labels.get(name):
                raise Refused(f"the alert has no label {name!r} (needed by {value!r})")
        return _Labels(value).substitute(labels)
    if isinstance(value, dict):
        return {k: render(v, labels) for k, v in value.items()}
    if isinstance(value, list):
        return [render(v, labels) for v in value]
    return value


_PLACEHOLDER = re.compile(r"\$\{[A-Za-z_][A-Za-z0-9_.]*\}")


def placeholders_filled(value: Any, filler: str = "x") -> Any:
    """``value`` with every placeholder replaced by ``filler``: to validate params at plan load."""
    if isinstance(value, str):
        return _PLACEHOLDER.sub(filler, value)
    if isinstance(value, dict):
        return {k: placeholders_filled(v, filler) for k, v in value.items()}
    if isinstance(value, list):
        return [placeholders_filled(v, filler) for v in value]
    return value


def one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def seconds(value: timedelta) -> float:
    return value.total_seconds()
