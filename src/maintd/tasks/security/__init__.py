"""``security-scan``: dependency, static, container image and log scans (issue 5, "Security scans").

A task runs one or more scans; each scanner is a module with one ``async def scan(cfg, ctx,
state) -> ScanOutput`` (``pip_audit``, ``bandit``, ``image``, ``logs``). Findings are reconciled
with the last run's through the task's memo (``ledger``: new / still open / fixed), a daily
report is written (``report``: Markdown and HTML), and vulnerable pins with a patch-level fix
become ``propose-update`` changes (``proposals``): a requirement file is never edited.
External tools run from argument lists in their own process group, bounded by the run's
deadline (``tools``). ``action`` ties it together and is imported only when a run starts.
"""

from __future__ import annotations

from maintd.checks.base import Kind, lazy
from maintd.tasks.security.config import (
    BanditScan,
    ImageScan,
    LogRule,
    LogScan,
    PipAuditScan,
    SecurityScanConfig,
    Severity,
)

__all__ = [
    "KIND",
    "BanditScan",
    "ImageScan",
    "LogRule",
    "LogScan",
    "PipAuditScan",
    "SecurityScanConfig",
    "Severity",
]

KIND = Kind(
    name="security-scan",
    config=SecurityScanConfig,
    build=lazy("maintd.tasks.security.action"),
    summary="pip-audit, bandit, trivy/grype and log-rule scans; new/open/fixed findings, daily report",
    changes=lambda config: config.report_dir is not None,
)
