"""One scanner-updates run: the pins, the newest releases, one drafted change per file."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from typing import Any

import aiohttp
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from maintd.checks.base import Change, CheckResult, RunContext, Status
from maintd.tasks.change_drafts import Ask, DraftFailed, draft
from maintd.tasks.scanner_updates import ScannerUpdatesConfig
from maintd.tasks.scanner_updates.pins import Pin, local_versions, newest, pins, versions_from_files

REQUESTER = "scanner-updates"


async def run(config: ScannerUpdatesConfig, ctx: RunContext) -> CheckResult:
    found: list[Pin] = []
    for path in config.files:
        try:
            found += await asyncio.to_thread(pins, path, config.packages)
        except OSError as exc:
            return CheckResult(Status.critical, f"cannot read {path}: {(exc.strerror or str(exc)).lower()}")
    # A pin written twice in one file (two extras) is one pin: the bump edits both.
    found = list({(p.file, canonicalize_name(p.package), p.version): p for p in found}.values())
    latest: dict[str, Version | None] = {}
    for package in sorted({canonicalize_name(p.package) for p in found}):
        try:
            latest[package] = newest(await _versions(config, ctx, package), config.prereleases)
        except (OSError, ValueError, aiohttp.ClientError, TimeoutError) as exc:
            return CheckResult(
                Status.unknown, f"index {config.index}: {package}: {str(exc) or type(exc).__name__}"
            )
    bumps: dict[str, list[tuple[Pin, str]]] = defaultdict(list)
    lines = []
    for pin in found:
        best = latest.get(canonicalize_name(pin.package))
        try:
            behind = best is not None and best > Version(pin.version)
        except InvalidVersion:
            behind = False
        if behind:
            bumps[pin.file].append((pin, str(best)))
            lines.append(f"{pin.file}: {pin.package} {pin.version} -> {best}")
        else:
            lines.append(f"{pin.file}: {pin.package} {pin.version} is the newest" if best else
                         f"{pin.file}: {pin.package} {pin.version}: not on the index")  # fmt: skip
    missing = sorted(
        {canonicalize_name(p) for p in config.packages} - {canonicalize_name(p.package) for p in found}
    )
    lines += [f"{name}: no exact pin (name==version) in {', '.join(config.files)}" for name in missing]
    count = sum(len(b) for b in bumps.values())
    head = f"{len(found)} scanner pins, {count} behind the index"
    result = CheckResult(Status.warning if count else Status.ok, "\n".join([head, *lines]),
                         {"pins": float(len(found)), "behind": float(count)})  # fmt: skip
    if not bumps or config.change is None:
        return result
    if ctx.dry_run:
        result.output += f"\ndry run: would draft {len(bumps)} change request(s)"
        result.changes += [Change("draft-change", f"bump {file}") for file in bumps]
        return result
    for file, wanted in bumps.items():
        await _propose(config, ctx, file, wanted, result)
    return result


async def _versions(config: ScannerUpdatesConfig, ctx: RunContext, package: str) -> list[Version]:
    if not config.index.startswith(("http://", "https://")):
        return await asyncio.to_thread(local_versions, config.index, package)
    url = f"{config.index.rstrip('/')}/{canonicalize_name(package)}/"
    headers = {"Accept": "application/vnd.pypi.simple.v1+json"}
    timeout = aiohttp.ClientTimeout(total=config.timeout.total_seconds())
    async with ctx.resources.http().get(url, headers=headers, timeout=timeout) as response:
        if response.status == 404:
            return []
        response.raise_for_status()
        page: dict[str, Any] = await response.json(content_type=None)
    files = [(str(f.get("filename")), bool(f.get("yanked"))) for f in page.get("files") or []]
    return versions_from_files(package, files)


async def _propose(
    config: ScannerUpdatesConfig,
    ctx: RunContext,
    file: str,
    wanted: list[tuple[Pin, str]],
    result: CheckResult,
) -> None:
    assert config.change is not None
    spec = ",".join(f"{pin.package}=={pin.version}->{to}" for pin, to in wanted)
    said = ", ".join(f"{pin.package} {pin.version} -> {to}" for pin, to in wanted)
    ask = Ask(
        title=f"bump security scanners in {file}: {said}"[:500],
        description=f"The scanners pinned in {file} are behind {config.index}: {said}. "
        "The procedure edits exactly these pins; install and run the scanners in staging before approving.",
        params={"file": file, "bumps": spec},
        target=ctx.target.name,
    )
    try:
        drafted = await draft(config.change, ask, REQUESTER, ctx.clock.now())
    except DraftFailed as exc:
        result.status = Status.critical
        result.output += f"\nno change drafted for {file}: {exc}"
        return
    state = "drafted" if drafted.new else f"already drafted ({drafted.state})"
    result.output += f"\nchange {drafted.change_id} {state}: {said}"
    if drafted.new:
        result.changes.append(
            Change("draft-change", f"change:{drafted.change_id}", {"file": file, "bumps": spec})
        )
