"""``scanner-updates``: the security scanners' own pins (pip-audit, bandit...) in pyproject.toml or
requirement files, against the newest release on a package index; a bump becomes ONE change
request per file (``python -m maintd.tasks.scanner_updates.bump`` edits exactly those pins).
Nothing is edited by the task. The index may be a local PEP 503 simple-index directory or a JSON
file (offline), or an index URL (PEP 691 JSON)."""

from __future__ import annotations

from datetime import timedelta

from pydantic import Field

from maintd.checks.base import Kind, lazy
from maintd.plan.base import StrictModel
from maintd.plan.types import Duration
from maintd.tasks.change_drafts import ChangeDraftSettings

__all__ = ["KIND", "ScannerUpdatesConfig"]


class ScannerUpdatesConfig(StrictModel):
    files: list[str] = Field(min_length=1, description="pyproject.toml or requirement files holding the pins")
    packages: list[str] = Field(
        default=["pip-audit", "bandit"], description="the scanners whose pins are checked"
    )
    index: str = Field(
        description="a simple-index directory (<dir>/<name>/index.html), a JSON file ({name: [versions]}) "
        "or an index URL such as https://pypi.org/simple"
    )
    prereleases: bool = Field(default=False, description="consider pre-releases")
    change: ChangeDraftSettings | None = Field(
        default=None, description="the change request drafted per file; null: report only"
    )
    timeout: Duration = Field(
        default=timedelta(seconds=20), description="each index request is given up after this"
    )


KIND = Kind(
    name="scanner-updates",
    config=ScannerUpdatesConfig,
    build=lazy("maintd.tasks.scanner_updates.run"),
    summary="security scanners' pinned versions vs the newest on an index; bumps drafted as change requests",
    changes=lambda config: config.change is not None,
)
