"""A dry run: the steps executing a change would take, with its commands as they would run."""

from __future__ import annotations

from maintd.changes import commands
from maintd.changes.model import ChangeError
from maintd.plan.models import Plan
from maintd.store.models import ChangeRow


def plan_steps(row: ChangeRow, plan: Plan) -> list[str]:
    """One line per step, in order; raises ChangeError when the plan no longer has what it needs."""
    settings = plan.changes
    try:
        procedure = settings.procedure(row.procedure)
        kind = settings.type(row.type)
    except KeyError as exc:
        raise ChangeError(f"change {row.id}: {exc.args[0]!r} is no longer in the plan") from None
    watch = settings.watch_of(kind)
    values = {**{k: str(v) for k, v in row.params.items()}, "change": str(row.id), "type": row.type}

    def show(command: list[str], target: str | None = None) -> str:
        try:
            argv = commands.render(command, {**values, "target": target} if target else values)
        except commands.CommandError as exc:
            return f"<{exc}>"
        return " ".join(repr(a) if (not a or any(c.isspace() for c in a)) else a for a in argv)

    checks = ", ".join(row.checks)
    steps: list[str] = []
    snapshot = procedure.snapshot or settings.snapshot
    steps.append(f"snapshot: {show(snapshot)}" if snapshot else "snapshot: none configured")
    steps.append(f"pre-check: run {checks}; every result must be ok, else the change is refused")
    canary = [t for t in row.targets if t in row.canary]
    rest = [t for t in row.targets if t not in row.canary]
    for target in canary:
        steps.append(f"apply (canary) on {target}: {show(procedure.apply, target)}")
    if canary and rest:
        steps.append(f"canary check: run {checks}; critical or unknown rolls back")
    for target in rest:
        steps.append(f"apply on {target}: {show(procedure.apply, target)}")
    steps.append(
        f"watch: run {checks} every {watch.interval} for {watch.window}; a critical result, or more than "
        f"{watch.max_errors} unknown, rolls back"
    )
    for target in reversed(row.targets):
        steps.append(f"on rollback, on {target}: {show(procedure.rollback, target)}")
    steps.append(
        "then: re-check, record completed / rolled_back / failed, notify the requester and approvers"
    )
    return steps
