"""Container image scan: trivy (``trivy image --format json``) or grype (``grype -o json``).

Neither installed is an unknown run saying so, never an ok one: nothing was scanned.
"""

from __future__ import annotations

import functools
import os
import shutil
from typing import Any

from maintd.checks.base import RunContext
from maintd.tasks.security.config import ImageScan, Severity
from maintd.tasks.security.findings import Finding, ScanError, ScanOutput
from maintd.tasks.security.tools import Shape, field, require, run_tool

# Both tools' words; "unknown"/"negligible" ratings are kept visible as medium / low.
_LEVEL = {
    "critical": Severity.critical,
    "high": Severity.high,
    "medium": Severity.medium,
    "low": Severity.low,
    "negligible": Severity.low,
    "unknown": Severity.medium,
}


async def scan(cfg: ImageScan, ctx: RunContext, state: dict[str, Any]) -> ScanOutput:
    tool, command = _pick(cfg)
    out = ScanOutput([], [])
    timeout = cfg.timeout.total_seconds() if cfg.timeout is not None else None
    argv = _trivy_argv if tool == "trivy" else _grype_argv
    parse = _trivy if tool == "trivy" else _grype
    for image in cfg.images:
        done = await run_tool(
            functools.partial(argv, command, image),
            label=cfg.label,
            ctx=ctx,
            timeout=timeout,
        )
        try:
            out.findings += parse(cfg, image, done.report)
        except Shape as exc:
            raise ScanError(
                f"{cfg.label}: {command[0]} report for {image} is not {tool} JSON: {exc}"
            ) from None
    out.notes.append(f"scanned with {tool}")
    return out


def _pick(cfg: ImageScan) -> tuple[str, list[str]]:
    if cfg.command is not None:
        tool = cfg.tool
        if tool == "auto":
            tool = "grype" if "grype" in os.path.basename(cfg.command[0]) else "trivy"
        return tool, [require(cfg.command[0], cfg.label), *cfg.command[1:]]
    if cfg.tool != "auto":
        return cfg.tool, [require(cfg.tool, cfg.label)]
    for tool in ("trivy", "grype"):
        if shutil.which(tool):
            return tool, [tool]
    raise ScanError(f"{cfg.label}: scanner not installed: neither trivy nor grype is on PATH")


def _trivy_argv(command: list[str], image: str, report: str) -> list[str]:
    return [*command, "image", "--format", "json", "--output", report, "--quiet", image]


def _grype_argv(command: list[str], image: str, report: str) -> list[str]:
    return [*command, image, "-o", "json", "--file", report, "-q"]


def _trivy(cfg: ImageScan, image: str, report: Any) -> list[Finding]:
    if not isinstance(report, dict):
        raise Shape(f"report: expected an object, got {type(report).__name__}")
    # An image with nothing trivy knows how to scan has no "Results" at all.
    results = field(report, "Results", list, "report") if "Results" in report else []
    findings: list[Finding] = []
    for r_index, result in enumerate(results):
        where = f"report.Results[{r_index}]"
        present = not isinstance(result, dict) or "Vulnerabilities" in result
        vulns = field(result, "Vulnerabilities", (list, type(None)), where) if present else None
        for index, vuln in enumerate(vulns or []):
            spot = f"{where}.Vulnerabilities[{index}]"
            vid = field(vuln, "VulnerabilityID", str, spot)
            fixed = str(vuln.get("FixedVersion") or "").split(",")[0].strip() or None
            findings.append(
                _finding(
                    cfg,
                    image,
                    vid,
                    field(vuln, "PkgName", str, spot),
                    field(vuln, "InstalledVersion", str, spot),
                    str(vuln.get("Severity", "unknown")),
                    str(vuln.get("Title") or ""),
                    fixed,
                )
            )
    return findings


def _grype(cfg: ImageScan, image: str, report: Any) -> list[Finding]:
    findings: list[Finding] = []
    for index, match in enumerate(field(report, "matches", list, "report")):
        spot = f"report.matches[{index}]"
        vuln = field(match, "vulnerability", dict, spot)
        artifact = field(match, "artifact", dict, spot)
        fix = vuln.get("fix") if isinstance(vuln.get("fix"), dict) else {}
        versions = [str(v) for v in fix.get("versions") or []]
        findings.append(
            _finding(
                cfg,
                image,
                field(vuln, "id", str, f"{spot}.vulnerability"),
                field(artifact, "name", str, f"{spot}.artifact"),
                field(artifact, "version", str, f"{spot}.artifact"),
                str(vuln.get("severity", "unknown")),
                str(vuln.get("description") or ""),
                versions[0] if versions else None,
            )
        )
    return findings


def _finding(
    cfg: ImageScan, image: str, vid: str, name: str, version: str, level: str, title: str, fixed: str | None
) -> Finding:
    return Finding(
        scanner=cfg.label,
        id=vid,
        location=f"{image}: {name} {version}",
        severity=_LEVEL.get(level.lower(), Severity.medium),
        title=" ".join(title.split())[:200] or vid,
        fixed_in=fixed,
        package=name,
        version=version,
    )
