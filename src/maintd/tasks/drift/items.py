"""One compared item (a file, a directory, a manifest) and how its difference is written."""

from __future__ import annotations

import difflib
import hashlib
from dataclasses import dataclass, field
from enum import StrEnum


class Verdict(StrEnum):
    same = "same"
    drift = "drift"
    error = "error"  # the desired state is broken or the actual thing unreadable: no verdict


@dataclass
class Item:
    kind: str  # file | directory | manifest
    name: str  # what the output calls it: a path, or Kind namespace/name
    verdict: Verdict = Verdict.same
    reasons: list[str] = field(default_factory=list)  # one line each: "mode 0600, expected 0644"
    diff: list[str] = field(default_factory=list)  # unified diff lines (no trailing newlines)

    def drifted(self, reason: str) -> None:
        if self.verdict is not Verdict.error:
            self.verdict = Verdict.drift
        self.reasons.append(reason)

    def failed(self, reason: str) -> None:
        self.verdict = Verdict.error
        self.reasons.append(reason)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def text_diff(expected: str, actual: str, expected_label: str, actual_label: str) -> list[str]:
    return [
        line.rstrip("\n")
        for line in difflib.unified_diff(
            expected.splitlines(keepends=True),
            actual.splitlines(keepends=True),
            expected_label,
            actual_label,
        )
    ]


def hash_diff(expected: str, actual: str | None, expected_label: str, actual_label: str) -> list[str]:
    """For sensitive or binary content: the hashes as a diff, never the content."""
    return [
        f"--- {expected_label}",
        f"+++ {actual_label}",
        "@@ content hidden: sha256 only @@",
        f"-sha256 {expected}",
        f"+sha256 {actual}" if actual is not None else "+(missing)",
    ]


def decoded(data: bytes) -> str | None:
    """The text of ``data``, or None for binary content (diffs of it are hashes)."""
    if b"\0" in data:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None
