"""The ``security-scan`` params: one task runs one or more scans, each naming its scanner."""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import Discriminator, Field, Tag, field_validator

from maintd.plan.base import StrictModel
from maintd.plan.types import Duration


class Severity(StrEnum):
    low = "low"
    medium = "medium"
    high = "high"
    critical = "critical"

    @property
    def rank(self) -> int:
        return _RANK[self]


_RANK = {Severity.low: 0, Severity.medium: 1, Severity.high: 2, Severity.critical: 3}


class _Scan(StrictModel):
    name: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z0-9_.-]+$",
        description="names this scan in findings; default: scanner",
    )
    timeout: Duration | None = Field(
        default=None, description="kill the scanner after this long; default and cap: the run's deadline"
    )

    @property
    def label(self) -> str:
        return self.name or str(getattr(self, "scanner", "scan"))


class PipAuditScan(_Scan):
    scanner: Literal["pip-audit"] = Field(description="dependency scan of pinned requirement files")
    requirements: list[str] = Field(
        min_length=1, description="requirement or lock files (pip-compile style, every package pinned ==)"
    )
    vulnerability_file: str | None = Field(
        default=None,
        description="offline: an OSV JSON file (a list of OSV records) matched here; pip-audit is not run",
    )
    command: list[str] = Field(default=["pip-audit"], min_length=1, description="the pip-audit program")
    osv_url: str | None = Field(
        default=None, description="query this OSV API (a mirror) instead of PyPI's vulnerability feed"
    )
    unrated_severity: Severity = Field(
        default=Severity.high,
        description="severity of a finding whose source gives none (pip-audit's JSON never does)",
    )


class BanditScan(_Scan):
    scanner: Literal["bandit"] = Field(description="static scan of Python code")
    paths: list[str] = Field(min_length=1, description="files or directories scanned (bandit -r)")
    exclude: list[str] = Field(default=[], description="paths bandit skips (bandit -x)")
    command: list[str] = Field(default=["bandit"], min_length=1, description="the bandit program")
    min_severity: Severity = Field(default=Severity.low, description="ignore issues rated below this")
    min_confidence: Severity = Field(
        default=Severity.low, description="ignore issues bandit is less confident of (low, medium, high)"
    )


class ImageScan(_Scan):
    scanner: Literal["image"] = Field(description="container image scan with trivy or grype")
    images: list[str] = Field(min_length=1, description="image references, e.g. registry/app:1.4")
    tool: Literal["auto", "trivy", "grype"] = Field(
        default="auto", description="which scanner; auto: trivy if installed, else grype"
    )
    command: list[str] | None = Field(
        default=None, min_length=1, description="the scanner program; default: trivy or grype on PATH"
    )


class LogRule(StrictModel):
    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$", description="the rule's name: the finding's id")
    pattern: str = Field(description="a Python regular expression matched against each line")
    threshold: int = Field(
        default=0, ge=0, description="a finding when more lines than this match in the scanned window"
    )
    severity: Severity = Field(default=Severity.high, description="the finding's severity")
    title: str | None = Field(default=None, description="the finding's title; default: the rule and count")
    group_by: str | None = Field(
        default=None, description="a named group of pattern: counted (and reported) per value"
    )

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, value: str) -> str:
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"pattern {value!r} is not a regular expression: {exc}") from None
        return value


class LogScan(_Scan):
    scanner: Literal["logs"] = Field(description="log analysis by regex and threshold")
    paths: list[str] = Field(min_length=1, description="log files (glob patterns allowed)")
    rules: list[LogRule] = Field(min_length=1, description="the rules applied to each new line")
    max_read: int = Field(
        default=256 << 20, ge=1, description="most bytes read per file per run (the rest: next run)"
    )


def _scanner(value: Any) -> Any:
    return value.get("scanner") if isinstance(value, dict) else getattr(value, "scanner", None)


# A callable discriminator, not discriminator="scanner": the same targeted errors, and a plan
# schema without OpenAPI's "discriminator" keyword (not JSON Schema).
Scan = Annotated[
    Annotated[PipAuditScan, Tag("pip-audit")]
    | Annotated[BanditScan, Tag("bandit")]
    | Annotated[ImageScan, Tag("image")]
    | Annotated[LogScan, Tag("logs")],
    Discriminator(
        _scanner,
        custom_error_type="scanner",
        custom_error_message="scanner must be one of pip-audit, bandit, image, logs",
    ),
]


class SecurityScanConfig(StrictModel):
    scans: list[Scan] = Field(min_length=1, description="the scans this task runs, in order")
    report_dir: str | None = Field(
        default=None, description="write the day's report here (Markdown and HTML); none: no report"
    )
    list_limit: int = Field(default=20, ge=1, le=10_000, description="most findings listed per section")

    @field_validator("scans")
    @classmethod
    def _unique_names(cls, scans: list[Scan]) -> list[Scan]:
        labels = [scan.label for scan in scans]
        twice = sorted({label for label in labels if labels.count(label) > 1})
        if twice:
            raise ValueError(f"scan names must differ (set name:): {', '.join(twice)} used twice")
        return scans
