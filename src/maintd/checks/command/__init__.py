"""``command``: run a program from an argument list; Nagios exit codes map to statuses.

Runs any Nagios / Monitoring Plugins check unchanged. Never a shell: the
arguments go to exec as a list, after substituting ``{target.name}``,
``{target.<connection key>}`` and ``{task.name}`` in each argument.
"""

from __future__ import annotations

import re
import signal
from typing import Any

from pydantic import Field

from maintd.checks.base import CheckResult, Kind, ProcessTracker, RunContext, Status
from maintd.checks.command.perfdata import parse_output
from maintd.checks.command.process import Finished, execute, kill_group, read_capped
from maintd.plan.base import StrictModel

__all__ = [
    "KIND",
    "CommandCheck",
    "CommandConfig",
    "kill_group",
    "plugin_result",
    "read_capped",
    "run_argv",
    "run_plugin",
    "substitute",
]

_PLACEHOLDER = re.compile(r"\{(target|task)\.([A-Za-z0-9_]+)\}")


class CommandConfig(StrictModel):
    argv: list[str] = Field(min_length=1, description="program and arguments, never a shell string")
    env: dict[str, str] = Field(default={}, description="extra environment variables")
    cwd: str | None = None
    read_only: bool = Field(
        default=False,
        description="true when the command only observes; otherwise a dry run does not execute it",
    )
    dry_run_argv: list[str] | None = Field(
        default=None, description="what to run instead in a dry run (e.g. the tool's own --dry-run)"
    )
    output_limit: int = Field(default=16_384, ge=256, description="bytes of output kept")


def substitute(argv: list[str], ctx: RunContext) -> list[str]:
    """Fill ``{target.*}`` / ``{task.*}`` placeholders, one argument at a time."""

    def value(match: re.Match[str]) -> str:
        scope, key = match.groups()
        if scope == "task":
            if key != "name":
                raise ValueError(f"unknown placeholder {match.group(0)}: only {{task.name}}")
            return ctx.task.name
        if key == "name":
            return ctx.target.name
        if key not in ctx.target.connection:
            raise ValueError(
                f"placeholder {match.group(0)}: target {ctx.target.name} has no connection key {key!r}"
            )
        return str(ctx.target.connection[key])

    return [_PLACEHOLDER.sub(value, arg) for arg in argv]


class CommandCheck:
    def __init__(self, config: CommandConfig) -> None:
        self.config = config

    async def run(self, ctx: RunContext) -> CheckResult:
        try:
            argv = substitute(self.config.argv, ctx)
        except ValueError as exc:
            return CheckResult(Status.unknown, str(exc))
        if ctx.dry_run and not self.config.read_only:
            if self.config.dry_run_argv is None:
                return CheckResult(Status.ok, f"dry run: would run {argv!r}")
            argv = substitute(self.config.dry_run_argv, ctx)
        cfg = self.config
        return await run_argv(argv, cfg.env, cfg.cwd, cfg.output_limit, ctx.processes)


async def run_argv(
    argv: list[str], env: dict[str, str], cwd: str | None, limit: int, tracker: ProcessTracker | None = None
) -> CheckResult:
    """Execute ``argv`` in its own process group; the whole group dies with the run.

    ``tracker`` hears of the group, so a maintd restarted after a crash can kill it.
    """
    return await run_plugin(argv, env=env, cwd=cwd, limit=limit, tracker=tracker)


async def run_plugin(
    argv: list[str],
    *,
    env: dict[str, str] | None = None,
    cwd: str | None = None,
    limit: int,
    tracker: ProcessTracker | None = None,
    time_limit: float | None = None,
    base_units: bool = False,
) -> CheckResult:
    """Run a program the Nagios way: exit code → status, output → text and perfdata metrics.

    The one implementation behind the ``command`` and ``nagios`` kinds. With
    ``base_units`` (the nagios kind) metrics are in seconds and bytes and carry
    ``label.warn`` / ``label.crit`` / ``label.min`` / ``label.max``; without,
    they are ``{label: value as printed}``.
    """
    try:
        done = await execute(argv, env=env, cwd=cwd, limit=limit, tracker=tracker, time_limit=time_limit)
    except OSError as exc:
        return CheckResult(Status.unknown, f"cannot start {argv[0]}: {exc.strerror or exc}")
    return plugin_result(done, base_units=base_units)


def plugin_result(done: Finished, *, base_units: bool = False) -> CheckResult:
    """The result of a finished program, read per the Nagios plugin guidelines."""
    parsed = parse_output(done.output.decode("utf-8", "replace"))
    lines = [parsed.summary] if parsed.summary or parsed.long_text else []
    if not lines and base_units:
        lines = ["(no output)"]
    if parsed.long_text:
        lines.append(parsed.long_text)
    code = done.code
    if code is None or code < 0 or code > 3:
        if code is None:
            reason = f"timed out after {done.time_limit:g} s; its process group was killed"
        elif code < 0:
            reason = f"killed by signal {-code} ({_signal_name(-code)})"
        else:
            reason = f"exit code {code} is not a plugin status (0-3)"
        lines[:1] = [f"{reason}: {lines[0]}" if lines and lines[0] else reason]
    lines += parsed.notes()
    if done.truncated:
        lines.append(f"[output truncated at {len(done.output)} bytes]")
    status = Status.unknown if code is None else Status.from_exit_code(code)
    metrics = parsed.metrics() if base_units else parsed.raw_metrics()
    return CheckResult(status, "\n".join(lines), metrics)


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return "unknown signal"


def _changes(config: Any) -> bool:
    return not config.read_only


KIND = Kind(
    name="command",
    config=CommandConfig,
    build=CommandCheck,
    summary="run a program (any Nagios plugin); exit 0/1/2/3 = ok/warning/critical/unknown",
    changes=_changes,
)
