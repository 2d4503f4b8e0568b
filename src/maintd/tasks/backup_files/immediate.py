"""The immediate backup run when verification fails (the seed's ``trigger_immediate_backup``).

Shared by ``backup-files`` and ``backup-postgres``: run the configured command once, then
verify what it produced once more; the run stays critical (the scheduled backup was bad, and
the task's alert says so) and its output tells whether the new backup is good.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from maintd.checks.base import Change, CheckResult, RunContext, Status
from maintd.checks.command.process import execute

OUTPUT_LIMIT = 16_384


async def run_backup_command(argv: list[str], ctx: RunContext) -> tuple[bool, str]:
    """Run ``argv`` (never a shell) until it ends or the run's time is up: (succeeded, what happened)."""
    try:
        done = await execute(
            argv, limit=OUTPUT_LIMIT, tracker=ctx.processes, time_limit=max(1.0, ctx.seconds_left())
        )
    except OSError as exc:
        return False, f"immediate backup: cannot start {argv[0]}: {exc.strerror or exc}"
    if done.code == 0:
        return True, "immediate backup: command succeeded"
    tail = done.output.decode(errors="replace").strip().splitlines()[-1:] or [""]
    how = "timed out" if done.code is None else f"exited {done.code}"
    return False, f"immediate backup: command {how}: {tail[0]}".rstrip(": ")


async def after_failure(
    result: CheckResult,
    argv: list[str] | None,
    ctx: RunContext,
    verify_again: Callable[[], Awaitable[CheckResult]],
) -> CheckResult:
    """On a critical result, run the immediate backup (not in a dry run) and verify it."""
    if result.status is not Status.critical or not argv:
        return result
    if ctx.dry_run:
        result.output += f"\ndry run: would run the immediate backup {argv!r} and verify it"
        result.changes.append(Change("backup", argv[0], {"argv": argv}))
        return result
    ok, line = await run_backup_command(argv, ctx)
    result.changes.append(Change("backup", argv[0], {"argv": argv, "succeeded": ok}))
    result.metrics["immediate_backup_ok"] = 1.0 if ok else 0.0
    if not ok:
        result.output += f"\n{line}"
        return result
    again = await verify_again()
    result.metrics["immediate_backup_verified"] = 1.0 if again.status is Status.ok else 0.0
    result.changes.extend(again.changes)
    first, *rest = again.output.splitlines() or [""]
    result.output += f"\n{line}; its backup verified {again.status.value}: {first}"
    result.output += "".join(f"\n  {r}" for r in rest)
    return result
