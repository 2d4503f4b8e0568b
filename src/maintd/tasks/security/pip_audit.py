"""Dependency scan: pip-audit on pinned requirement files, or offline against an OSV file."""

from __future__ import annotations

import os
from typing import Any

from packaging.version import InvalidVersion, Version

from maintd.checks.base import RunContext
from maintd.tasks.security import osv
from maintd.tasks.security.config import PipAuditScan
from maintd.tasks.security.findings import Finding, ScanError, ScanOutput
from maintd.tasks.security.tools import Shape, field, require, run_tool


async def scan(cfg: PipAuditScan, ctx: RunContext, state: dict[str, Any]) -> ScanOutput:
    for path in cfg.requirements:
        if not os.path.isfile(path):
            why = "a directory, not a file" if os.path.isdir(path) else "No such file or directory"
            raise ScanError(f"{cfg.label}: requirement file {path}: {why}")
    if cfg.vulnerability_file is not None:
        return _offline(cfg)
    command = [require(cfg.command[0], cfg.label), *cfg.command[1:]]
    out = ScanOutput([], [])
    for path in cfg.requirements:
        await _audit(cfg, command, ctx, path, out)
    return out


def _offline(cfg: PipAuditScan) -> ScanOutput:
    assert cfg.vulnerability_file is not None
    try:
        records = osv.read_records(cfg.vulnerability_file)
        out = ScanOutput([], [])
        for path in cfg.requirements:
            pins, notes = osv.read_pins(path)
            out.notes += notes
            for pin in pins:
                for match in osv.affecting(records, pin.name, pin.version):
                    out.findings.append(_finding(cfg, match, pin))
    except ScanError as exc:
        raise ScanError(f"{cfg.label}: {exc.message}") from None
    out.notes.append(f"offline: matched against {len(records)} records of {cfg.vulnerability_file}")
    return out


def _finding(cfg: PipAuditScan, match: osv.Match, pin: osv.Pin) -> Finding:
    return Finding(
        scanner=cfg.label,
        id=str(match.record["id"]),
        location=f"{pin.name}=={pin.version} in {pin.file}",
        severity=osv.severity_of(match.record) or cfg.unrated_severity,
        title=osv.title_of(match.record),
        fixed_in=match.fixed_in,
        package=pin.name,
        version=pin.version,
        file=pin.file,
    )


async def _audit(cfg: PipAuditScan, command: list[str], ctx: RunContext, path: str, out: ScanOutput) -> None:
    def argv(report: str) -> list[str]:
        # --no-deps --disable-pip: the pins are the whole truth; resolving would install packages.
        args = [*command, "-r", path, "-f", "json", "-o", report, "--progress-spinner", "off"]
        args += ["--no-deps", "--disable-pip"]
        if cfg.osv_url:
            args += ["-s", "osv", "--osv-url", cfg.osv_url]
        return args

    done = await run_tool(argv, label=cfg.label, ctx=ctx, timeout=_seconds(cfg))
    try:
        dependencies = field(done.report, "dependencies", list, "report")
        for index, dep in enumerate(dependencies):
            _dependency(cfg, dep, f"report.dependencies[{index}]", path, out)
    except Shape as exc:
        raise ScanError(f"{cfg.label}: {command[0]} report for {path} is not pip-audit JSON: {exc}") from None


def _dependency(cfg: PipAuditScan, dep: Any, where: str, path: str, out: ScanOutput) -> None:
    name = field(dep, "name", str, where)
    if "skip_reason" in dep:
        out.notes.append(f"{path}: {name} skipped by pip-audit: {dep['skip_reason']}")
        return
    version = field(dep, "version", str, where)
    for index, vuln in enumerate(field(dep, "vulns", list, where)):
        spot = f"{where}.vulns[{index}]"
        fixes = [str(v) for v in field(vuln, "fix_versions", list, spot)]
        out.findings.append(
            Finding(
                scanner=cfg.label,
                id=field(vuln, "id", str, spot),
                location=f"{name}=={version} in {path}",
                severity=cfg.unrated_severity,
                title=" ".join(str(vuln.get("description") or "").split())[:200] or str(vuln["id"]),
                fixed_in=_first_fix(version, fixes),
                package=name,
                version=version,
                file=path,
            )
        )


def _first_fix(current: str, fixes: list[str]) -> str | None:
    try:
        now = Version(current)
        later = sorted(v for v in (Version(f) for f in fixes) if v > now)
    except InvalidVersion:
        return fixes[0] if fixes else None
    return str(later[0]) if later else None


def _seconds(cfg: PipAuditScan) -> float | None:
    return cfg.timeout.total_seconds() if cfg.timeout is not None else None
