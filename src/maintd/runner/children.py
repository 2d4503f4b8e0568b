"""Process groups that runs started, remembered on local disk.

A SIGKILLed maintd cannot kill the commands it started: they outlive it,
and the recovery re-run would overlap them. So each command's process group
is written down (``<state>/children/<run_id>``) while it runs, and a restarted
maintd kills the groups of the runs it recovers before running them again.
Process ids are reused, so a group is only killed when its members started
no earlier than the recorded start time of its leader (Linux /proc).
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
from pathlib import Path

log = logging.getLogger(__name__)


class Children:
    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def tracker(self, run_id: str) -> RunTracker:
        return RunTracker(self, run_id)

    def write(self, run_id: str, pgid: int) -> None:
        start = _start_time(pgid)
        if start is None:
            return  # already gone
        self.directory.mkdir(parents=True, exist_ok=True)
        tmp = self.directory / f".{run_id}.{pgid}"
        tmp.write_text(f"{pgid} {start}\n")
        tmp.replace(self.directory / f"{run_id}.{pgid}")

    def forget(self, run_id: str, pgid: int) -> None:
        with contextlib.suppress(FileNotFoundError):
            (self.directory / f"{run_id}.{pgid}").unlink()

    def kill_orphans(self, run_ids: list[str]) -> list[int]:
        """Kill the process groups the given runs left behind; returns the pids killed."""
        wanted = set(run_ids)
        try:  # one listing for all the runs: a Celery worker asks for every run it takes
            names = os.listdir(self.directory)
        except FileNotFoundError:
            return []
        killed: list[int] = []
        for name in names:
            if name.partition(".")[0] not in wanted:  # <run_id>.<pgid>; ".<run_id>.<pgid>" is partial
                continue
            record = self.directory / name
            try:
                pgid, start = (int(x) for x in record.read_text().split())
            except (OSError, ValueError):
                continue
            for pid in _members(pgid, start):
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)
                    killed.append(pid)
            record.unlink(missing_ok=True)
        if killed:
            log.warning("killed %d process(es) left running by interrupted runs: %s", len(killed), killed)
        return killed


class RunTracker:
    def __init__(self, children: Children, run_id: str) -> None:
        self.children = children
        self.run_id = run_id

    def started(self, pgid: int) -> None:
        try:
            self.children.write(self.run_id, pgid)
        except OSError as exc:  # a full or read-only disk must not fail the run
            log.warning("cannot record process group %d of run %s: %s", pgid, self.run_id, exc)

    def ended(self, pgid: int) -> None:
        self.children.forget(self.run_id, pgid)


def _stat(pid: int) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses: split after the last ')'.
    return text[text.rindex(")") + 2 :].split()


def _start_time(pid: int) -> int | None:
    fields = _stat(pid)
    return int(fields[19]) if fields else None  # field 22: starttime, in clock ticks since boot


def _members(pgid: int, started: int) -> list[int]:
    """Live processes in group ``pgid`` that started at or after ``started``."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        fields = _stat(int(entry.name))
        if fields is None or fields[0] == "Z":
            continue
        if int(fields[2]) == pgid and int(fields[19]) >= started:  # field 5: pgrp
            members.append(int(entry.name))
    return members
