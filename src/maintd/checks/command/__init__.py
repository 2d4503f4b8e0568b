"""``command``: run a program from an argument list; Nagios exit codes map to statuses.

Runs any Nagios / Monitoring Plugins check unchanged. Never a shell: the
arguments go to exec as a list, after substituting ``{target.name}``,
``{target.<connection key>}`` and ``{task.name}`` in each argument.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
from typing import Any

from pydantic import Field

from maintd.checks.base import CheckResult, Kind, ProcessTracker, RunContext, Status
from maintd.checks.command.perfdata import split_output
from maintd.plan.base import StrictModel

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
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            cwd=cwd,
            env={**os.environ, **env} if env else None,
            start_new_session=True,
        )
    except OSError as exc:
        return CheckResult(Status.unknown, f"cannot start {argv[0]}: {exc.strerror or exc}")
    if tracker is not None:
        tracker.started(proc.pid)
    try:
        assert proc.stdout is not None
        raw, truncated = await read_capped(proc.stdout, limit)
        code = await proc.wait()
    finally:
        # On cancellation (timeout, window end, shutdown) and after a normal exit alike:
        # nothing the command started may outlive its run.
        kill_group(proc.pid)
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await asyncio.shield(proc.wait())
        if tracker is not None:
            tracker.ended(proc.pid)
    text, metrics = split_output(raw.decode("utf-8", "replace"))
    if truncated:
        text += f"\n[output truncated at {limit} bytes]"
    status = Status.from_exit_code(code)
    if code < 0:
        text = f"killed by signal {-code}\n{text}".strip()
    elif code > 3:
        text = f"exit code {code}\n{text}".strip()
    return CheckResult(status, text, metrics)


async def read_capped(stream: asyncio.StreamReader, limit: int) -> tuple[bytes, bool]:
    """Read to EOF keeping the first ``limit`` bytes; drain the rest so the writer never blocks."""
    kept = bytearray()
    truncated = False
    while chunk := await stream.read(65536):
        room = limit - len(kept)
        if room > 0:
            kept += chunk[:room]
        if len(chunk) > room:
            truncated = True
    return bytes(kept), truncated


def kill_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


def _changes(config: Any) -> bool:
    return not config.read_only


KIND = Kind(
    name="command",
    config=CommandConfig,
    build=CommandCheck,
    summary="run a program (any Nagios plugin); exit 0/1/2/3 = ok/warning/critical/unknown",
    changes=_changes,
)
