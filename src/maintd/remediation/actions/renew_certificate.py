"""``renew_certificate`` (certificate_expired): run the plan's certificates task on the target now.

The renewal itself is the ``certificates`` task kind's (called through the plan, as a task
run, so it is recorded and audited like any run); success is the run ending ok.
"""

from __future__ import annotations

from pydantic import Field

from maintd.checks.base import Change, Status
from maintd.plan.base import StrictModel
from maintd.remediation.base import ActionContext, ActionKind, ActionResult, Refused

TASK_KIND = "certificates"


class RenewConfig(StrictModel):
    task: str = Field(description="a task of kind certificates in the plan")
    target: str | None = Field(
        default=None, description="the plan target to renew on; default: the alert's target label"
    )


class RenewCertificate:
    def __init__(self, config: RenewConfig) -> None:
        self.config = config

    async def execute(self, ctx: ActionContext) -> ActionResult:
        cfg = self.config
        target = cfg.target or ctx.labels.get("target")
        if not target:
            raise Refused("no target: the alert has no target label and the params name none")
        change = Change("renew", target, {"task": cfg.task})
        if ctx.dry_run:
            return ActionResult(True, f"dry run: would run task {cfg.task} on {target}", [change])
        outcome = await ctx.run_task(cfg.task, target)
        detail = {**change.detail, "run_id": outcome.run_id, "status": outcome.status.value}
        first = outcome.output.splitlines()[0] if outcome.output else ""
        text = f"task {cfg.task} on {target}: {outcome.status.value} {first}".strip()
        return ActionResult(outcome.status is Status.ok, text, [Change("renew", target, detail)])


ACTION = ActionKind(
    name="renew_certificate",
    config=RenewConfig,
    build=RenewCertificate,
    summary="certificate_expired: run the plan's certificates task on the target now",
    destructive=lambda _cfg: False,
)
