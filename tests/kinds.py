"""Run one task kind directly, without a store: for the kind's own tests."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from maintd.checks.base import CheckResult, Resources, RunContext, RunSample
from maintd.clock import FakeClock
from maintd.plan.models import Target, Task
from maintd.registry import Registry
from tests.conftest import T0

REGISTRY = Registry.default()


def make_target(**fields: Any) -> Target:
    return Target.model_validate({"name": "t1", "kind": "host", **fields})


async def run_kind(
    kind: str,
    params: dict[str, Any],
    target: Target | None = None,
    *,
    dry_run: bool = False,
    timeout: float = 30,
    history: Sequence[RunSample] = (),
    clock: FakeClock | None = None,
    memo: dict[str, Any] | None = None,
) -> CheckResult:
    """Build and run ``kind`` once at ``clock`` (default: a FakeClock at T0).

    ``history`` is what ``ctx.history(n)`` answers: earlier runs, newest first; ``memo`` what
    ``ctx.memo()`` answers (what the previous run saved as ``CheckResult.memo``).
    """
    spec = REGISTRY.get(kind)
    config = spec.config.model_validate(params)
    task = Task.model_validate(
        {"name": "probe", "kind": kind, "targets": ["t1"], "schedule": {"every": "1m"}, "params": params}
    )
    clock = clock or FakeClock(T0)
    earlier = list(history)

    async def recent(limit: int) -> list[RunSample]:
        return earlier[:limit]

    async def saved() -> dict[str, Any]:
        return dict(memo or {})

    async with Resources.open() as resources:
        ctx = RunContext(
            task,
            target or make_target(),
            config,
            clock,
            clock.now() + timedelta(seconds=timeout),
            resources,
            dry_run,
            history=recent,
            memo=saved,
        )
        return await spec.build(config).run(ctx)
