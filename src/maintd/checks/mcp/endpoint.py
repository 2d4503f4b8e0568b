"""Where the server is: a program to start (stdio) or a URL (streamable HTTP). No SDK import here."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Stdio:
    argv: list[str]
    env: dict[str, str]  # may hold secrets: never shown
    cwd: str | None

    def describe(self) -> str:
        return " ".join(self.argv)


@dataclass(frozen=True)
class Http:
    url: str
    headers: dict[str, str]  # may hold secrets: never shown

    def describe(self) -> str:
        return self.url
