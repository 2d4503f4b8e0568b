"""The registry of task kinds: built-ins and third-party plugins alike.

Built by ``Registry.default()`` in the app factory, never at import time.
Third-party kinds register through the ``maintd.kinds`` entry-point group, each
pointing at a module-level ``KIND``.
"""

from __future__ import annotations

import importlib
from importlib.metadata import entry_points

from maintd.checks.base import Kind

BUILTIN_KINDS = (
    "maintd.checks.command",
    "maintd.checks.http",
    "maintd.checks.disk",
    "maintd.checks.mcp",
    "maintd.checks.postgres",
    "maintd.checks.tcp",
    "maintd.checks.dns",
    "maintd.checks.tls",
    "maintd.checks.redis",
    "maintd.checks.nagios",
    "maintd.checks.kubernetes",
    "maintd.tasks.backup_files",
    "maintd.tasks.backup_postgres",
    "maintd.tasks.logs",
    "maintd.tasks.postgres_upkeep",
    "maintd.tasks.rotate_credentials",
    "maintd.tasks.security",
    "maintd.tasks.certificates",
    "maintd.tasks.dr_drill",
    "maintd.tasks.redis_upkeep",
    "maintd.tasks.drift",
    "maintd.tasks.capacity_review",  # capacity reports on the plan's schedule (maintd.capacity)
    "maintd.tasks.right_sizing",  # optimisation: requests/limits vs use, quotas, growth
    "maintd.tasks.unused_resources",  # optimisation: stale claims, Released volumes, old files
    "maintd.tasks.security_policies",  # security updates: policy manifests applied by change
    "maintd.tasks.rotate_credentials.generic",  # security updates: hook-based credential rotation
    "maintd.tasks.scanner_updates",  # security updates: the scanners' own pins bumped by change
    "maintd.tasks.report",  # KPI report, monthly review, monthly audit on schedule (maintd.reports)
)


class UnknownKind(LookupError):
    pass


class Registry:
    def __init__(self) -> None:
        self._kinds: dict[str, Kind] = {}

    def register(self, kind: Kind) -> None:
        if kind.name in self._kinds:
            raise ValueError(f"task kind {kind.name!r} is registered twice")
        self._kinds[kind.name] = kind

    def get(self, name: str) -> Kind:
        try:
            return self._kinds[name]
        except KeyError:
            raise UnknownKind(
                f"unknown task kind {name!r}; known kinds: {', '.join(sorted(self._kinds))}"
            ) from None

    def names(self) -> list[str]:
        return sorted(self._kinds)

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self._kinds.values())

    @classmethod
    def default(cls, *, plugins: bool = True) -> Registry:
        registry = cls()
        for module in BUILTIN_KINDS:
            registry.register(importlib.import_module(module).KIND)
        if plugins:
            for entry in entry_points(group="maintd.kinds"):
                registry.register(entry.load())
        return registry
