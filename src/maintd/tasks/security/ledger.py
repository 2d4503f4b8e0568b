"""Findings across runs: new, still open, fixed; kept in the task's memo between runs.

The memo holds each open finding (by fingerprint) with the day it was first seen. A scan that
could not run this time keeps its open findings as they were: nothing is called fixed unless it
was looked for.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from maintd.tasks.security.findings import Finding


@dataclass(frozen=True)
class Tracked:
    finding: Finding
    first_seen: str  # ISO date-time of the run that first reported it


@dataclass
class Ledger:
    new: list[Tracked] = field(default_factory=list)
    open: list[Tracked] = field(default_factory=list)
    fixed: list[Tracked] = field(default_factory=list)
    unscanned: list[Tracked] = field(default_factory=list)  # open, but their scan failed this run

    @property
    def current(self) -> list[Tracked]:
        return self.new + self.open + self.unscanned

    def memo(self) -> dict[str, Any]:
        return {
            t.finding.fingerprint: {**t.finding.as_json(), "first_seen": t.first_seen} for t in self.current
        }


def reconcile(
    previous: Any, found: list[Finding], scanned: set[str], failed: set[str], now: datetime
) -> Ledger:
    """Compare this run's findings with the memo's; ``scanned``/``failed``: the scans that ran or not.

    Findings of scans no longer configured are dropped (neither open nor fixed).
    """
    before = _load(previous)
    ledger = Ledger()
    seen: set[str] = set()
    for finding in found:
        fingerprint = finding.fingerprint
        if fingerprint in seen:
            continue
        seen.add(fingerprint)
        earlier = before.get(fingerprint)
        if earlier is None:
            ledger.new.append(Tracked(finding, now.isoformat()))
        else:
            ledger.open.append(Tracked(finding, earlier.first_seen))
    for fingerprint, tracked in before.items():
        if fingerprint in seen:
            continue
        if tracked.finding.scanner in scanned:
            ledger.fixed.append(tracked)
        elif tracked.finding.scanner in failed:
            ledger.unscanned.append(tracked)
    for group in (ledger.new, ledger.open, ledger.fixed, ledger.unscanned):
        group.sort(key=lambda t: (-t.finding.severity.rank, t.finding.scanner, t.finding.where, t.finding.id))
    return ledger


def _load(previous: Any) -> dict[str, Tracked]:
    """The memo's findings; an entry that does not read back (an older format) is forgotten."""
    tracked: dict[str, Tracked] = {}
    if not isinstance(previous, dict):
        return tracked
    for fingerprint, data in previous.items():
        try:
            tracked[str(fingerprint)] = Tracked(Finding.from_json(data), str(data["first_seen"]))
        except (KeyError, TypeError, ValueError):
            continue
    return tracked
