"""Offline dependency matching: pinned requirements against an OSV file, with packaging's versions.

pip-audit 2.10 reads vulnerabilities only from a service (PyPI, OSV's API at ``--osv-url``, ESMS),
never from a file, so the offline mode is ours: the file is a JSON list of OSV records
(https://ossf.github.io/osv-schema/), or an OSV query answer ``{"vulns": [...]}``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from maintd.tasks.security.config import Severity
from maintd.tasks.security.findings import ScanError

# GHSA's words (database_specific.severity) in our scale.
_SEVERITY = {
    "critical": Severity.critical,
    "high": Severity.high,
    "moderate": Severity.medium,
    "medium": Severity.medium,
    "low": Severity.low,
}


@dataclass(frozen=True)
class Pin:
    name: str  # canonical (PEP 503)
    version: str
    file: str
    line: int


def read_pins(path: str) -> tuple[list[Pin], list[str]]:
    """The ``name==version`` pins of a requirement file, and notes on what was not checked.

    Understands pip-compile output: ``\\`` continuations, ``--hash`` options, comments, markers.
    Raises ScanError when the file cannot be read.
    """
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except OSError as exc:
        raise ScanError(f"requirement file {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise ScanError(
            f"requirement file {path}: not UTF-8 text ({exc.reason} at byte {exc.start})"
        ) from None
    pins: list[Pin] = []
    notes: list[str] = []
    for number, line in _logical_lines(text):
        if line.startswith("-"):
            notes.append(f"{path}:{number}: option {line.split()[0]} not followed offline")
            continue
        spec = " ".join(token for token in line.split() if not token.startswith("--hash"))
        try:
            req = Requirement(spec)
        except InvalidRequirement as exc:
            raise ScanError(f"requirement file {path}:{number}: not a requirement: {exc}") from None
        if req.marker is not None and not req.marker.evaluate():
            continue
        pinned = [s for s in req.specifier if s.operator in ("==", "===") and "*" not in s.version]
        if len(pinned) != 1:
            notes.append(f"{path}:{number}: {req.name} is not pinned with ==, not checked")
            continue
        pins.append(Pin(canonicalize_name(req.name), pinned[0].version, path, number))
    return pins, notes


def _logical_lines(text: str) -> list[tuple[int, str]]:
    lines: list[tuple[int, str]] = []
    pending, start = "", 0
    for number, raw in enumerate(text.splitlines(), 1):
        code = raw.split(" #", 1)[0] if not raw.lstrip().startswith("#") else ""
        if not pending:
            start = number
        if code.rstrip().endswith("\\"):
            pending += code.rstrip()[:-1] + " "
            continue
        joined = (pending + code).strip()
        pending = ""
        if joined:
            lines.append((start, joined))
    return lines


def read_records(path: str) -> list[dict[str, Any]]:
    """The OSV records of ``path``; ScanError naming the file and the record when it is not OSV."""
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except OSError as exc:
        raise ScanError(f"vulnerability file {path}: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise ScanError(f"vulnerability file {path}: malformed JSON: {exc}") from None
    if isinstance(data, dict) and isinstance(data.get("vulns"), list):
        data = data["vulns"]
    if not isinstance(data, list):
        raise ScanError(
            f"vulnerability file {path}: expected a list of OSV records, got {type(data).__name__}"
        )
    for index, record in enumerate(data):
        if not isinstance(record, dict) or not isinstance(record.get("id"), str):
            raise ScanError(f"vulnerability file {path}: record {index} has no string 'id'")
        if not isinstance(record.get("affected", []), list):
            raise ScanError(f"vulnerability file {path}: record {record['id']}: 'affected' is not a list")
    return data


@dataclass(frozen=True)
class Match:
    record: dict[str, Any]
    fixed_in: str | None


def affecting(records: list[dict[str, Any]], name: str, version: str) -> list[Match]:
    """The records whose PyPI ``affected`` entries include ``name`` at ``version``."""
    try:
        current = Version(version)
    except InvalidVersion:
        return []
    wanted = canonicalize_name(name)
    matches: list[Match] = []
    for record in records:
        if record.get("withdrawn"):
            continue
        fixes: list[Version] = []
        hit = False
        for affected in record.get("affected", []):
            package = affected.get("package", {}) if isinstance(affected, dict) else {}
            if (
                package.get("ecosystem") != "PyPI"
                or canonicalize_name(str(package.get("name", ""))) != wanted
            ):
                continue
            if version in affected.get("versions", []):
                hit = True
            for rng in affected.get("ranges", []):
                if isinstance(rng, dict) and rng.get("type") == "ECOSYSTEM":
                    in_range, fixed = _in_range(rng.get("events", []), current)
                    hit = hit or in_range
                    fixes += fixed
        if hit:
            later = sorted(v for v in fixes if v > current)
            matches.append(Match(record, str(later[0]) if later else None))
    return matches


def _in_range(events: list[Any], current: Version) -> tuple[bool, list[Version]]:
    """OSV's walk over a range's events in version order: introduced opens, fixed/last_affected close."""
    parsed: list[tuple[Version, str]] = []
    for event in events:
        if not isinstance(event, dict) or len(event) != 1:
            continue
        ((kind, value),) = event.items()
        try:
            parsed.append((Version("0") if value == "0" else Version(str(value)), kind))
        except InvalidVersion:
            continue
    parsed.sort(key=lambda pair: pair[0])
    affected = False
    for at, kind in parsed:
        if kind == "introduced" and current >= at:
            affected = True
        elif (kind == "fixed" and current >= at) or (kind == "last_affected" and current > at):
            affected = False
    return affected, [at for at, kind in parsed if kind == "fixed"]


def severity_of(record: dict[str, Any]) -> Severity | None:
    """GHSA's rating (database_specific.severity), when the record carries one."""
    candidates = [record.get("database_specific")]
    candidates += [a.get("ecosystem_specific") for a in record.get("affected", []) if isinstance(a, dict)]
    for place in candidates:
        if isinstance(place, dict) and isinstance(place.get("severity"), str):
            found = _SEVERITY.get(place["severity"].lower())
            if found is not None:
                return found
    return None


def title_of(record: dict[str, Any]) -> str:
    text = record.get("summary") or record.get("details") or ""
    return " ".join(str(text).split())[:200] or str(record["id"])
