"""What a scanner returns (findings) and how it says it could not scan (ScanError)."""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from maintd.checks.base import RunContext, Status
from maintd.tasks.security.config import Severity


@dataclass(frozen=True)
class Finding:
    """One problem a scanner reported: a vulnerable package, an unsafe line, a log rule over threshold."""

    scanner: str  # the scan's label (its name, else the scanner)
    id: str  # the vulnerability or rule id: GHSA-..., PYSEC-..., B602, ssh-failed-login
    location: str  # package==version (in which file), path:line, image, log file
    severity: Severity
    title: str
    fixed_in: str | None = None  # the first version without it, when known
    package: str | None = None
    version: str | None = None
    file: str | None = None  # the requirement file a vulnerable pin is in
    line: int | None = None  # shown, not identifying: an edit above it moves it
    anchor: str = ""  # what tells apart two alike findings in one place (bandit: the flagged code)

    @property
    def fingerprint(self) -> str:
        """Stable across runs and days: the same problem in the same place."""
        key = "\0".join((self.scanner, self.id, self.location, self.anchor))
        return hashlib.sha256(key.encode()).hexdigest()[:16]

    @property
    def where(self) -> str:
        return self.location if self.line is None else f"{self.location}:{self.line}"

    def as_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "scanner": self.scanner,
            "id": self.id,
            "location": self.location,
            "severity": str(self.severity),
            "title": self.title,
        }
        extra = {
            "fixed_in": self.fixed_in,
            "package": self.package,
            "version": self.version,
            "file": self.file,
            "line": self.line,
            "anchor": self.anchor or None,
        }
        data.update({key: value for key, value in extra.items() if value is not None})
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Finding:
        return cls(
            scanner=str(data["scanner"]),
            id=str(data["id"]),
            location=str(data["location"]),
            severity=Severity(data["severity"]),
            title=str(data.get("title", "")),
            fixed_in=data.get("fixed_in"),
            package=data.get("package"),
            version=data.get("version"),
            file=data.get("file"),
            line=data.get("line"),
            anchor=str(data.get("anchor") or ""),
        )


class ScanError(Exception):
    """The scan could not be done (not installed, bad input, malformed output, killed at its deadline).

    The message is shown as is; ``status`` is what the run becomes (unknown: nothing was learned).
    """

    def __init__(self, message: str, status: Status = Status.unknown) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


@dataclass
class ScanOutput:
    """Findings, plus lines worth telling (files skipped, scanner notes), plus state for the memo."""

    findings: list[Finding]
    notes: list[str]
    state: dict[str, Any] | None = None  # saved for this scan's next run (the log scanner's offsets)


Scanner = Callable[[Any, RunContext, dict[str, Any]], Awaitable[ScanOutput]]
"""``await scanner(scan_config, ctx, previous_state) -> ScanOutput``; raises ScanError."""
