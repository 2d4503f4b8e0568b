"""Exact pins (``name==version``) in pyproject.toml or requirement files, releases on an index,
and the edit a bump makes."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

_PIN = re.compile(
    r"(?<![A-Za-z0-9._-])(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)\s*==\s*(?P<version>[A-Za-z0-9.+!_-]+)"
)


@dataclass(frozen=True)
class Pin:
    file: str
    package: str  # as written
    version: str


def pins(path: str, wanted: list[str]) -> list[Pin]:
    """Every exact pin of a wanted package in the file (comments skipped). OSError when unreadable."""
    names = {canonicalize_name(w) for w in wanted}
    found: list[Pin] = []
    for line in Path(path).read_text().splitlines():
        text = line.split("#", 1)[0]
        for m in _PIN.finditer(text):
            if canonicalize_name(m["name"]) in names:
                found.append(Pin(path, m["name"], m["version"]))
    return found


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.files: list[tuple[str, bool]] = []  # (file name, yanked)
        self._yanked = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            self._yanked = any(k == "data-yanked" for k, _ in attrs)

    def handle_data(self, data: str) -> None:
        if data.strip():
            self.files.append((data.strip(), self._yanked))


def versions_from_files(package: str, files: list[tuple[str, bool]]) -> list[Version]:
    """Versions of ``package`` in distribution file names (wheels and sdists), yanked ones left out."""
    prefix = canonicalize_name(package).replace("-", "_")
    out: set[Version] = set()
    for name, yanked in files:
        if yanked:
            continue
        stem = re.sub(r"\.(tar\.gz|zip|whl)$", "", name)
        parts = stem.split("-")
        if len(parts) < 2 or canonicalize_name(parts[0]).replace("-", "_") != prefix:
            continue
        try:
            out.add(Version(parts[1]))
        except InvalidVersion:
            continue
    return sorted(out)


def local_versions(index: str, package: str) -> list[Version]:
    """From a simple-index directory or a JSON file; OSError or ValueError when unreadable."""
    path = Path(index)
    if path.is_dir():
        page = path / canonicalize_name(package) / "index.html"
        if not page.exists():
            return []
        parser = _Links()
        parser.feed(page.read_text())
        return versions_from_files(package, parser.files)
    table = json.loads(path.read_text())
    if not isinstance(table, dict):
        raise ValueError(f"index {index}: not a JSON object of package -> versions")
    for name, listed in table.items():
        if canonicalize_name(name) == canonicalize_name(package):
            return sorted(Version(v) for v in listed)
    return []


def newest(versions: list[Version], prereleases: bool) -> Version | None:
    usable = [v for v in versions if prereleases or not v.is_prerelease]
    return max(usable) if usable else None


def bump_text(text: str, package: str, old: str, new: str) -> tuple[str, int]:
    """``text`` with every exact pin ``package==old`` made ``package==new``; how many were."""
    pattern = re.compile(
        rf"(?<![A-Za-z0-9._-])({re.escape(package)}\s*==\s*){re.escape(old)}(?![A-Za-z0-9.+!_-])"
    )
    return pattern.subn(lambda m: m.group(1) + new, text)
