"""The registry of remediation actions: one module each under ``maintd.remediation.actions``.

Adding an action: write ``actions/<name>.py`` exporting ``ACTION = ActionKind(...)``, add it
to ``BUILTIN_ACTIONS``, document it in docs/remediation.md. Modules import their client
libraries (psycopg, kubernetes_asyncio) inside ``execute``, so building the registry is cheap.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from functools import cache

from maintd.remediation.base import ActionKind

BUILTIN_ACTIONS = (
    "maintd.remediation.actions.command",
    "maintd.remediation.actions.webhook",
    "maintd.remediation.actions.restart_pod",
    "maintd.remediation.actions.memory_hook",
    "maintd.remediation.actions.clean_temp_files",
    "maintd.remediation.actions.reset_connections",
    "maintd.remediation.actions.circuit_breaker",
    "maintd.remediation.actions.renew_certificate",
    "maintd.remediation.actions.cordon_and_drain",
)


class UnknownAction(LookupError):
    pass


class ActionRegistry:
    def __init__(self, kinds: list[ActionKind]) -> None:
        self._kinds: dict[str, ActionKind] = {}
        for kind in kinds:
            if kind.name in self._kinds:
                raise ValueError(f"remediation action {kind.name!r} is registered twice")
            self._kinds[kind.name] = kind

    def get(self, name: str) -> ActionKind:
        try:
            return self._kinds[name]
        except KeyError:
            known = ", ".join(sorted(self._kinds))
            raise UnknownAction(f"unknown remediation action {name!r}; known: {known}") from None

    def names(self) -> list[str]:
        return sorted(self._kinds)

    def __iter__(self) -> Iterator[ActionKind]:
        return iter(self._kinds.values())


@cache
def builtin() -> ActionRegistry:
    """The built-in actions (built once, on first use, never at import)."""
    return ActionRegistry([importlib.import_module(m).ACTION for m in BUILTIN_ACTIONS])
