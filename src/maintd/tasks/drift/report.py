"""The run's result: counts as metrics, one headline, then each drifted item with its diff, bounded."""

from __future__ import annotations

from pathlib import Path

from maintd.checks.base import CheckResult, Status
from maintd.tasks.drift import DriftConfig
from maintd.tasks.drift.items import Item, Verdict

KINDS = {"file": "files", "directory": "directories", "manifest": "manifests"}


def report(cfg: DriftConfig, desired: Path, commit: str | None, items: list[Item]) -> CheckResult:
    drifted = [i for i in items if i.verdict is Verdict.drift]
    failed = [i for i in items if i.verdict is Verdict.error]
    metrics = {"checked": float(len(items)), "drifted": float(len(drifted)), "errors": float(len(failed))}
    for kind, plural in KINDS.items():
        of_kind = [i for i in items if i.kind == kind]
        if of_kind:
            metrics[f"{plural}_checked"] = float(len(of_kind))
            metrics[f"{plural}_drifted"] = float(sum(i.verdict is Verdict.drift for i in of_kind))
    status = Status.ok
    if drifted:
        status = Status(cfg.on_drift)
    if failed:  # no verdict for some: unknown, unless the drift found is critical
        status = max(status, Status.unknown, key=lambda s: s.rank)
    source = f"desired {desired}" + (f", {commit}" if commit else "")
    parts = [f"{len(drifted)} of {len(items)} items drifted" if drifted else f"{len(items)} items as desired"]
    if failed:
        parts.append(f"{len(failed)} not compared")
    lines = [f"drift ({source}): {', '.join(parts)}"]
    size = len(lines[0])
    listed = failed + drifted
    for shown, item in enumerate(listed):
        block = _block(item, cfg.max_diff_lines)
        cost = sum(len(line) + 1 for line in block)
        if size + cost > cfg.max_output_bytes and shown:
            rest = len(listed) - shown
            lines.append(f"... output cut at {cfg.max_output_bytes} bytes: {rest} more items not shown")
            break
        lines += block
        size += cost
    return CheckResult(status, "\n".join(lines), metrics)


def _block(item: Item, max_lines: int) -> list[str]:
    word = "DRIFT" if item.verdict is Verdict.drift else "ERROR"
    block = [f"{word} {item.kind} {item.name}: {'; '.join(item.reasons)}"]
    block += item.diff[:max_lines]
    if len(item.diff) > max_lines:
        block.append(f"... {len(item.diff) - max_lines} more diff lines")
    return block
