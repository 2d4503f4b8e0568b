"""Patch updates as proposals: a vulnerable pin whose fix keeps major.minor. Nothing is edited here."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from packaging.version import InvalidVersion, Version

from maintd.checks.base import Change
from maintd.tasks.security.findings import Finding


@dataclass(frozen=True)
class Proposal:
    file: str
    package: str
    current: str
    to: str
    fixes: tuple[str, ...]  # the vulnerability ids the update fixes

    def change(self) -> Change:
        return Change(
            "propose-update",
            f"{self.file}: {self.package}",
            {
                "package": self.package,
                "from": self.current,
                "to": self.to,
                "fixes": list(self.fixes),
                "file": self.file,
            },
        )

    @property
    def line(self) -> str:
        return f"{self.file}: {self.package} {self.current} -> {self.to} (fixes {', '.join(self.fixes)})"


def propose(findings: list[Finding]) -> list[Proposal]:
    """One proposal per vulnerable pin whose every fixable vulnerability is fixed by a patch release.

    The update goes to the highest first-fixed version among them, so it fixes them all; a pin
    that needs a minor or major bump for any of them is left to a person (not a patch).
    """
    by_pin: dict[tuple[str, str, str], list[Finding]] = defaultdict(list)
    for finding in findings:
        if finding.file and finding.package and finding.version and finding.fixed_in:
            by_pin[(finding.file, finding.package, finding.version)].append(finding)
    proposals: list[Proposal] = []
    for (file, package, version), group in sorted(by_pin.items()):
        try:
            current = Version(version)
            target = max(Version(str(f.fixed_in)) for f in group)
        except InvalidVersion:
            continue
        if (target.major, target.minor) != (current.major, current.minor) or target <= current:
            continue
        proposals.append(Proposal(file, package, version, str(target), tuple(sorted({f.id for f in group}))))
    return proposals
