"""``webhook``: POST the alert as JSON to a URL; a 2xx answer is success.

With ``circuit``, the call is skipped (and the execution fails, saying so) while that named
circuit breaker is open: the engine honours its own breakers for its own calls.
"""

from __future__ import annotations

from typing import Any

import aiohttp
from pydantic import Field

from maintd.checks.base import Change
from maintd.plan.base import StrictModel
from maintd.remediation.base import ActionContext, ActionKind, ActionResult, one_line


class WebhookConfig(StrictModel):
    url: str = Field(pattern=r"^https?://\S+$", description="where to POST")
    payload: dict[str, Any] = Field(
        default={}, description="extra JSON fields sent with playbook, target and labels"
    )
    headers: dict[str, str] = Field(default={}, description="extra request headers")
    circuit: str | None = Field(
        default=None, description="skip the call while this named circuit breaker is open"
    )
    destructive: bool = Field(default=False, description="whether it needs approval under approval: auto")


class WebhookAction:
    def __init__(self, config: WebhookConfig) -> None:
        self.config = config

    async def execute(self, ctx: ActionContext) -> ActionResult:
        return await post(self.config.url, self.config.payload, self.config.headers, self.config.circuit, ctx)


async def post(
    url: str, payload: dict[str, Any], headers: dict[str, str], circuit: str | None, ctx: ActionContext
) -> ActionResult:
    """POST the execution's alert to ``url`` unless ``circuit`` is open; 2xx is success."""
    body = {"playbook": ctx.playbook, "target": ctx.target, "labels": ctx.labels, "dry_run": ctx.dry_run}
    body.update(payload)
    change = Change("post", url.split("?", 1)[0])
    if circuit is not None and (until := await ctx.circuits.open_until(circuit)) is not None:
        return ActionResult(
            False, f"circuit {circuit!r} is open until {until.isoformat()}: not calling {url}"
        )
    if ctx.dry_run:
        return ActionResult(True, f"dry run: would POST to {change.target}", [change])
    timeout = aiohttp.ClientTimeout(total=max(0.1, ctx.seconds_left()))
    try:
        async with ctx.resources.http().post(url, json=body, headers=headers, timeout=timeout) as response:
            text = (await response.text())[:2000]
            status = response.status
    except (aiohttp.ClientError, TimeoutError) as exc:
        return ActionResult(False, f"POST {change.target}: {one_line(exc) or type(exc).__name__}")
    done = [Change("post", change.target, {"status": status})]
    if not 200 <= status < 300:
        return ActionResult(False, f"POST {change.target}: HTTP {status} {text}".strip(), done)
    return ActionResult(True, f"POST {change.target}: HTTP {status}", done)


ACTION = ActionKind(
    name="webhook",
    config=WebhookConfig,
    build=WebhookAction,
    summary="POST the alert as JSON to a URL; 2xx is success",
    destructive=lambda cfg: bool(cfg.destructive),
)
