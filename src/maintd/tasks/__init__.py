"""Maintenance actions: task kinds that change things (one folder each), registered like checks.

Each folder exports ``KIND`` (see :mod:`maintd.checks.base`) with ``changes`` set, honours
``ctx.dry_run`` and reports what it changed as ``CheckResult.changes``.
"""
