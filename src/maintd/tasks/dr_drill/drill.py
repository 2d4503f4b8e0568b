"""Run one drill: the chosen method, RTO/RPO judged against their limits, the report written."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Awaitable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import psycopg

from maintd.checks.base import Change, CheckResult, RunContext, Status
from maintd.plan.types import format_duration
from maintd.tasks.dr_drill import DrDrillConfig, Limits
from maintd.tasks.dr_drill.source import DrillError, one_line, params, where

if TYPE_CHECKING:
    from maintd.tasks.dr_drill.instance import Programs

T = TypeVar("T")


@dataclass
class Drill:
    """What a drill found and did, filled in as it goes."""

    started_at: datetime
    status: Status = Status.ok
    lines: list[str] = field(default_factory=list)
    metrics: dict[str, float] = field(default_factory=dict)
    changes: list[Change] = field(default_factory=list)
    phases: dict[str, float] = field(default_factory=dict)
    verified: bool = False

    def add(self, status: Status, line: str) -> None:
        self.status = max(self.status, status, key=lambda s: s.rank)
        self.lines.append(line)

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        """Time a phase in wall seconds (RTO is real elapsed time, whatever maintd's clock says)."""
        started = time.perf_counter()
        try:
            yield
        finally:
            self.phases[name] = round(time.perf_counter() - started, 3)
            self.metrics[f"{name}_seconds"] = self.phases[name]


async def run(cfg: DrDrillConfig, ctx: RunContext) -> CheckResult:
    drill = Drill(ctx.clock.now())
    head = f"DR drill ({_method(cfg)})"
    try:
        source = params(cfg, ctx)
        head = f"DR drill of {where(source)} ({_method(cfg)})"
        if ctx.dry_run:
            return await _dry_run(cfg, ctx, source, drill, head)
        if cfg.method == "basebackup":
            from maintd.tasks.dr_drill.basebackup import drill_basebackup

            await drill_basebackup(cfg, ctx, source, drill)
        else:
            from maintd.tasks.dr_drill.dump import drill_dump

            await drill_dump(cfg, ctx, source, drill)
    except DrillError as exc:
        drill.add(Status.critical, str(exc))
    except psycopg.Error as exc:  # the source or the copy went away mid-drill
        drill.add(Status.critical, f"PostgreSQL: {one_line(exc)}")
    except OSError as exc:
        drill.add(Status.critical, f"{exc.filename or 'drill'}: {exc.strerror or exc}")
    _judge(drill, "rto", cfg.max_rto, "max_rto")
    _judge(drill, "rpo", cfg.max_rpo, "max_rpo")
    head = f"{head}: {_verdict(drill)}"
    if cfg.report_dir:
        from maintd.tasks.dr_drill.report import write_report

        await write_report(cfg, ctx, drill, head)
    return CheckResult(drill.status, "\n".join([head, *drill.lines]), drill.metrics, drill.changes)


def _method(cfg: DrDrillConfig) -> str:
    return "basebackup, standby + failover" if cfg.standby else cfg.method


def _verdict(drill: Drill) -> str:
    if not drill.verified:
        return "failed"
    rto, rpo = drill.metrics.get("rto_seconds"), drill.metrics.get("rpo_seconds")
    text = f"restored and verified, RTO {rto:.1f}s" if rto is not None else "restored and verified"
    return text + (f", RPO {rpo:.1f}s" if rpo is not None else ", RPO not measured")


def _judge(drill: Drill, name: str, limits: Limits, param: str) -> None:
    value = drill.metrics.get(f"{name}_seconds")
    if value is None:
        return
    for status, limit in ((Status.critical, limits.critical), (Status.warning, limits.warning)):
        if limit is not None and value > limit.total_seconds():
            level = status.value
            drill.add(status, f"{name.upper()} {value:.1f}s is over {param} {level} {format_duration(limit)}")
            return


async def finish(coro: Awaitable[T]) -> T:
    """Await clean-up to its end even when the run is cancelled meanwhile (then re-raise)."""
    task = asyncio.ensure_future(coro)
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        await task
        raise


def default_drill_dir(ctx: RunContext) -> Path:
    name = re.sub(r"[^A-Za-z0-9_.-]", "_", f"{ctx.task.name}-{ctx.target.name}")
    return Path("/var/tmp") / f"maintd-dr-{name}"


async def _dry_run(
    cfg: DrDrillConfig, ctx: RunContext, source: dict[str, Any], drill: Drill, head: str
) -> CheckResult:
    """Say what would be done; touch nothing (not even the source: no marker is written)."""
    from maintd.tasks.dr_drill.instance import programs

    progs = programs(cfg.bin_dir, cfg.run_as)
    root = Path(cfg.drill_dir) if cfg.drill_dir else default_drill_dir(ctx)
    steps: list[tuple[str, str, dict[str, Any]]] = [("create", str(root), {})]
    if cfg.marker_table:
        steps.append(("mark", f"{where(source)} public.{cfg.marker_table}", {"drill_key": _key(ctx)}))
    if cfg.method == "basebackup":
        needed = ["pg_basebackup", "pg_ctl"]
        steps += [
            ("basebackup", str(root / "data"), {"source": where(source)}),
            ("start", str(root / "data"), {"port": cfg.drill_port or "free", "run_as": progs.run_as}),
        ]
        if cfg.failover_command:
            argv = _planned_failover(cfg, root, progs)
            steps.append(("failover", argv[0], {"argv": argv}))
        steps += [("stop", str(root / "data"), {}), ("remove", str(root), {})]
    else:
        needed = ["pg_dump", "pg_restore"]
        scratch = cfg.scratch_database or scratch_name(ctx)
        at = f"{source['host']}:{source['port']}/{scratch}"
        steps += [("dump", str(root / "source.dump"), {"source": where(source)}), ("restore", at, {})]
        steps += [("drop", at, {}), ("remove", str(root), {})]
    for name in needed:
        progs.path(name)  # a missing program fails the dry run too
    if cfg.report_dir:
        steps.append(("report", cfg.report_dir, {}))
    drill.changes += [Change(action, target, detail) for action, target, detail in steps]
    plan = ", ".join(f"{action} {target}" for action, target, _ in steps)
    return CheckResult(Status.ok, f"{head}\ndry run: would {plan}", {}, drill.changes)


def _planned_failover(cfg: DrDrillConfig, root: Path, progs: Programs) -> list[str]:
    """The failover command as the drill would run it (the real run's audit shows it expanded too)."""
    from maintd.tasks.dr_drill.basebackup import failover_argv
    from maintd.tasks.dr_drill.instance import Layout

    assert cfg.failover_command is not None
    argv = failover_argv(cfg.failover_command, Layout(root, cfg.drill_port or 0), progs, cfg.bin_dir)
    if cfg.drill_port is None:  # a free port is chosen when the drill runs: keep its placeholder
        argv = [old if "{port}" in old else new for old, new in zip(cfg.failover_command, argv, strict=True)]
    return argv


def _key(ctx: RunContext) -> str:
    from maintd.tasks.dr_drill.source import drill_key

    return drill_key(ctx)


def scratch_name(ctx: RunContext) -> str:
    cleaned = "".join(c if c.isalnum() else "_" for c in ctx.target.name.lower())
    return f"maintd_dr_{cleaned}"[:63]


def rpo_line(drill: Drill, cut: datetime, newest: datetime | None, what: str) -> None:
    """RPO: from the moment the copy stopped following the source to its newest data (source clock)."""
    if newest is None:
        drill.add(Status.warning, f"RPO not measured: {what} found nothing in the copy")
        return
    rpo = max(timedelta(0), cut - newest).total_seconds()
    drill.metrics["rpo_seconds"] = round(rpo, 3)
    drill.lines.append(
        f"RPO {rpo:.3f}s: the newest data that came back ({what}) is from {newest.isoformat()}"
    )
