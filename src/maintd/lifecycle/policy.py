"""The seed's version support policy, made exact.

- A release line's support: a major line (X.0) two years from its first release, a minor
  line (X.Y, Y > 0) one year from its first release; a ``end_of_support`` in the plan wins.
- A patch release is supported until the next patch of its line is released ("until next
  patch"), and never beyond its line.
- Among the versions still supported, by release date: the newest has full support, the
  one before security updates only, older ones best effort; past its end: ended.
- End-of-life notice: six months before the end of support of the version in use.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from enum import StrEnum

from maintd.lifecycle.dates import add_months
from maintd.plan.lifecycle import VERSION, Version

NOTICE_MONTHS = 6
MAJOR_YEARS, MINOR_YEARS = 2, 1


class Support(StrEnum):
    full = "full"
    security = "security"
    best_effort = "best-effort"
    ended = "ended"


@dataclass(frozen=True)
class VersionStatus:
    version: str
    released: date
    end_of_support: date
    support: Support

    @property
    def notice_from(self) -> date:
        """When the end-of-life notice is due: six months before the end of support."""
        return add_months(self.end_of_support, -NOTICE_MONTHS)


def parse(text: str) -> tuple[int, int, int]:
    match = VERSION.match(text)
    if match is None:
        raise ValueError(f"{text!r} is not a version")
    return int(match[1]), int(match[2] or 0), int(match[3] or 0)


def end_of_support(version: Version, versions: list[Version]) -> date:
    """When ``version`` stops being supported, given every listed release of its component."""
    if version.end_of_support is not None:
        return version.end_of_support
    major, minor, patch = parse(version.version)
    line = [v for v in versions if parse(v.version)[:2] == (major, minor)]
    years = MAJOR_YEARS if minor == 0 else MINOR_YEARS  # X.0.* is the major line's first release
    end = add_months(min(v.released for v in line), 12 * years)
    later_patches = [
        v.released for v in line if parse(v.version)[2] > patch and v.released > version.released
    ]
    return min([end, *later_patches])


def statuses(versions: list[Version], today: date) -> list[VersionStatus]:
    """Every version with its end of support and support level on ``today``, newest release first."""
    ends = {v.version: end_of_support(v, versions) for v in versions}
    rank = 0
    out: list[VersionStatus] = []
    for v in sorted(versions, key=lambda v: (v.released, parse(v.version)), reverse=True):
        if today >= ends[v.version]:
            support = Support.ended
        else:
            support = (Support.full, Support.security, Support.best_effort)[min(rank, 2)]
            rank += 1
        out.append(VersionStatus(v.version, v.released, ends[v.version], support))
    return out
