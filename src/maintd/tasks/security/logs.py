"""Log analysis: regex rules with thresholds over the lines written since the last scan.

Each file is read from the offset the last scan stopped at (kept in the task's memo with the
file's inode), so a daily scan reads one day of log. A new inode or a file shorter than the
offset (rotated, truncated) is read from its start. Only whole lines are read: a line still
being written is left for the next scan.
"""

from __future__ import annotations

import asyncio
import glob
import os
import re
from collections import Counter
from typing import Any

from maintd.checks.base import RunContext, format_bytes
from maintd.tasks.security.config import LogRule, LogScan
from maintd.tasks.security.findings import Finding, ScanError, ScanOutput


async def scan(cfg: LogScan, ctx: RunContext, state: dict[str, Any]) -> ScanOutput:
    rules = [(rule, re.compile(rule.pattern)) for rule in cfg.rules]
    for rule, pattern in rules:
        if rule.group_by is not None and rule.group_by not in pattern.groupindex:
            raise ScanError(f"{cfg.label}: rule {rule.name}: pattern has no group named {rule.group_by!r}")
    out = ScanOutput([], [], {})
    assert out.state is not None
    for path in _files(cfg, out):
        # Off the event loop: a day of log can be hundreds of MB.
        counts, kept, note = await asyncio.to_thread(_read, cfg, path, state.get(path), rules)
        out.state[path] = kept
        if note:
            out.notes.append(note)
        for (rule_name, value), count in sorted(counts.items()):
            rule = next(r for r, _ in rules if r.name == rule_name)
            if count > rule.threshold:
                out.findings.append(_finding(cfg, rule, path, value, count))
    return out


def _files(cfg: LogScan, out: ScanOutput) -> list[str]:
    files: list[str] = []
    for pattern in cfg.paths:
        if glob.has_magic(pattern):
            found = sorted(p for p in glob.glob(pattern) if os.path.isfile(p))
            if not found:
                out.notes.append(f"{pattern}: no file matches")
            files += found
        else:
            files.append(pattern)
    return list(dict.fromkeys(files))


_CHUNK = 1 << 20


def _read(
    cfg: LogScan, path: str, before: Any, rules: list[tuple[LogRule, re.Pattern[str]]]
) -> tuple[Counter[tuple[str, str]], dict[str, int], str]:
    """Counts per (rule, group value) in the new lines; the offset to keep; a note on how it was read."""
    counts: Counter[tuple[str, str]] = Counter()
    try:
        with open(path, "rb") as f:
            info = os.fstat(f.fileno())
            offset, note = _start(path, before, info.st_ino, info.st_size)
            f.seek(offset)
            end, budget, partial = offset, cfg.max_read, b""
            while budget > 0 and (chunk := f.read(min(_CHUNK, budget))):
                budget -= len(chunk)
                block = partial + chunk
                cut = block.rfind(b"\n") + 1
                _count(block[:cut], rules, counts)
                end += cut  # the block starts at end: only whole lines move it
                partial = block[cut:]
    except OSError as exc:
        raise ScanError(f"{cfg.label}: log file {path}: {exc.strerror or exc}") from None
    if end == offset and partial:
        # One line longer than max_read: skip it rather than stall on it every scan.
        end += len(partial)
    if budget <= 0 and end < info.st_size:
        note = f"{path}: read {format_bytes(end - offset)} (max_read); the rest next scan"
    return counts, {"inode": info.st_ino, "offset": end}, note


def _count(
    block: bytes, rules: list[tuple[LogRule, re.Pattern[str]]], counts: Counter[tuple[str, str]]
) -> None:
    for line in block.decode("utf-8", errors="replace").splitlines():
        for rule, pattern in rules:
            match = pattern.search(line)
            if match is not None:
                value = (match.group(rule.group_by) or "") if rule.group_by else ""
                counts[(rule.name, value)] += 1


def _start(path: str, before: Any, inode: int, size: int) -> tuple[int, str]:
    if not isinstance(before, dict) or not isinstance(before.get("offset"), int):
        return 0, ""
    if before.get("inode") != inode:
        return 0, f"{path}: a new file since the last scan (rotated?): read from its start"
    if before["offset"] > size:
        return 0, f"{path}: shorter than at the last scan (truncated?): read from its start"
    return int(before["offset"]), ""


def _finding(cfg: LogScan, rule: LogRule, path: str, value: str, count: int) -> Finding:
    shown = f" for {rule.group_by} {value}" if rule.group_by else ""
    return Finding(
        scanner=cfg.label,
        id=rule.name,
        location=f"{path} ({rule.group_by}={value})" if rule.group_by else path,
        severity=rule.severity,
        title=(rule.title + ": " if rule.title else "")
        + f"{count} lines matched {rule.name}{shown} since the last scan (threshold {rule.threshold})",
    )
