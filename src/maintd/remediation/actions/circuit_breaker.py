"""``circuit_breaker`` (api_rate_limit): open a named circuit for a while, and tell others by webhook.

The circuit is a row the engine reads before its own calls (``webhook`` actions naming it
skip the call while it is open) and lists at ``GET /api/v1/remediations/circuits``; the
optional webhook tells everything else (a gateway, a feature-flag service).
"""

from __future__ import annotations

from datetime import timedelta

from pydantic import Field

from maintd.checks.base import Change
from maintd.plan.base import StrictModel
from maintd.plan.types import Duration
from maintd.remediation.actions.webhook import post
from maintd.remediation.base import ActionContext, ActionKind, ActionResult, Refused


class CircuitConfig(StrictModel):
    name: str = Field(min_length=1, max_length=63, description="the circuit's name; ${label} is filled in")
    duration: Duration = Field(default=timedelta(minutes=5), description="how long it stays open")
    url: str | None = Field(
        default=None, pattern=r"^https?://\S+$", description="a webhook told that the circuit opened"
    )


class CircuitBreaker:
    def __init__(self, config: CircuitConfig) -> None:
        self.config = config

    async def execute(self, ctx: ActionContext) -> ActionResult:
        cfg = self.config
        if not cfg.name.strip():
            raise Refused("the circuit name is empty")
        until = ctx.clock.now() + cfg.duration
        change = Change("open_circuit", cfg.name, {"until": until.isoformat()})
        if ctx.dry_run:
            return ActionResult(
                True, f"dry run: would open circuit {cfg.name} until {until.isoformat()}", [change]
            )
        await ctx.circuits.open(cfg.name, until=until, reason=f"playbook {ctx.playbook} on {ctx.target}")
        output = f"circuit {cfg.name} open until {until.isoformat()}"
        if cfg.url is None:
            return ActionResult(True, output, [change])
        told = await post(cfg.url, {"circuit": cfg.name, "open_until": until.isoformat()}, {}, None, ctx)
        return ActionResult(told.ok, f"{output}; {told.output}", [change, *told.changes])


ACTION = ActionKind(
    name="circuit_breaker",
    config=CircuitConfig,
    build=CircuitBreaker,
    summary="api_rate_limit: open a named circuit breaker the engine honours, and tell a webhook",
    destructive=lambda _cfg: False,
)
