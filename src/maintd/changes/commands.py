"""A procedure's commands: placeholders filled per argument, run without a shell.

Each ``{name}`` in an argument is replaced by its value inside that one argument, so a
value can never become a second argument or a shell construct. Values that start with
``-`` are refused: they would read as options to the program.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import timedelta

from maintd.checks.command.process import execute
from maintd.plan.changes import PLACEHOLDER


class CommandError(ValueError):
    """A placeholder without a value, or a value that may not be used."""


@dataclass(frozen=True)
class CommandResult:
    argv: list[str]
    code: int | None  # None: killed at its timeout, or it never started (see ``error``)
    output: str
    duration_s: float
    error: str | None = None  # why it did not run, or that it timed out

    @property
    def ok(self) -> bool:
        return self.code == 0

    def summary(self) -> str:
        if self.error:
            return self.error
        return f"exit status {self.code}"

    def record(self) -> dict[str, object]:
        """For an event's payload."""
        return {
            "argv": self.argv,
            "exit": self.code,
            "error": self.error,
            "output": self.output[-4000:],
            "seconds": round(self.duration_s, 3),
        }


def check_value(name: str, value: str) -> None:
    if value.startswith("-"):
        raise CommandError(
            f"parameter {name!r} may not start with '-' (it would read as an option): {value!r}"
        )
    if "\x00" in value or "\n" in value:
        raise CommandError(f"parameter {name!r} may not contain NUL or newline characters")


def render(command: list[str], values: dict[str, str]) -> list[str]:
    """The argument list with every ``{name}`` replaced; raises CommandError naming a missing one."""
    out: list[str] = []
    for arg in command:
        missing = [name for name in PLACEHOLDER.findall(arg) if name not in values]
        if missing:
            raise CommandError(f"no value for {{{missing[0]}}} in {arg!r}")
        out.append(PLACEHOLDER.sub(lambda m: values[m.group(1)], arg))
    return out


async def run(argv: list[str], *, timeout: timedelta, limit: int) -> CommandResult:
    """Run ``argv`` in its own process group (killed at the end), output capped at ``limit`` bytes."""
    started = time.perf_counter()
    try:
        finished = await execute(argv, limit=limit, time_limit=timeout.total_seconds())
    except OSError as exc:
        reason = exc.strerror or str(exc)
        return CommandResult(argv, None, "", time.perf_counter() - started, f"cannot run {argv[0]}: {reason}")
    output = finished.output.decode("utf-8", "replace")
    if finished.truncated:
        output += f"\n[output truncated at {limit} bytes]"
    error = None if finished.code is not None else f"stopped after its timeout of {timeout}"
    return CommandResult(argv, finished.code, output, time.perf_counter() - started, error)
