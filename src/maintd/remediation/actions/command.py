"""``command``: run a program (an argument list, never a shell) and succeed on exit status 0."""

from __future__ import annotations

from pydantic import Field

from maintd.checks.base import Change
from maintd.checks.command.process import execute
from maintd.plan.base import StrictModel
from maintd.remediation.base import ActionContext, ActionKind, ActionResult

OUTPUT_LIMIT = 8192


class CommandConfig(StrictModel):
    argv: list[str] = Field(min_length=1, description="the program and its arguments; ${label} is filled in")
    env: dict[str, str] = Field(default={}, description="added to maintd's environment")
    cwd: str | None = Field(default=None, description="working directory")
    destructive: bool = Field(default=True, description="whether it needs approval under approval: auto")


class CommandAction:
    def __init__(self, config: CommandConfig) -> None:
        self.config = config

    async def execute(self, ctx: ActionContext) -> ActionResult:
        cfg = self.config
        change = Change("run", cfg.argv[0], {"argv": cfg.argv})
        if ctx.dry_run:
            return ActionResult(True, f"dry run: would run {cfg.argv!r}", [change])
        return await run_command(cfg.argv, cfg.env, cfg.cwd, ctx, change)


async def run_command(
    argv: list[str], env: dict[str, str], cwd: str | None, ctx: ActionContext, change: Change
) -> ActionResult:
    """Run ``argv`` in its own process group within the execution's time; exit 0 is success."""
    try:
        done = await execute(
            argv, env=env, cwd=cwd, limit=OUTPUT_LIMIT, tracker=ctx.processes, time_limit=ctx.seconds_left()
        )
    except OSError as exc:
        return ActionResult(False, f"cannot start {argv[0]}: {exc.strerror or exc}")
    output = done.output.decode("utf-8", "replace").strip()
    if done.code is None:
        return ActionResult(False, f"{argv[0]} did not finish within {done.time_limit:.0f} s\n{output}")
    detail = {**change.detail, "exit_code": done.code}
    changed = [Change(change.action, change.target, detail)]
    if done.code != 0:
        return ActionResult(False, f"{argv[0]} exited with {done.code}\n{output}".strip(), changed)
    return ActionResult(True, output or f"{argv[0]} exited with 0", changed)


ACTION = ActionKind(
    name="command",
    config=CommandConfig,
    build=CommandAction,
    summary="run a program (argument list); exit status 0 is success",
    destructive=lambda cfg: bool(cfg.destructive),
)
