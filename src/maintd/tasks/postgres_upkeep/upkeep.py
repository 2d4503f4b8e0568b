"""Measure, choose the operations the thresholds call for, run them one at a time, measure again.

Order: leftover invalid indexes first (they slow every write and block a new REINDEX of the same
index), then VACUUM (ANALYZE), REINDEX INDEX CONCURRENTLY, ANALYZE, worst first within each, at
most ``max_operations``. Each statement runs in autocommit under lock_timeout and
statement_timeout: a lock it cannot get in time is a warning and the next run tries again.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import psycopg

from maintd.checks.base import Change, CheckResult, RunContext, Status
from maintd.tasks.postgres_upkeep import PostgresUpkeepConfig
from maintd.tasks.postgres_upkeep import measure as m
from maintd.tasks.postgres_upkeep.connect import Conn, connect, one_line
from maintd.tasks.postgres_upkeep.operations import Op, Runner, plan, reindex_ops


@dataclass
class Report:
    head: str
    status: Status = Status.ok
    lines: list[str] = field(default_factory=list)
    metrics: dict[str, float] = field(default_factory=dict)
    changes: list[Change] = field(default_factory=list)

    def add(self, status: Status, line: str) -> None:
        self.status = max(self.status, status, key=lambda s: s.rank)
        self.lines.append(line)

    def result(self) -> CheckResult:
        return CheckResult(self.status, "\n".join([self.head, *self.lines]), self.metrics, self.changes)


async def run(cfg: PostgresUpkeepConfig, ctx: RunContext) -> CheckResult:
    connected = await connect(cfg, ctx)
    if isinstance(connected, str):
        return CheckResult(Status.critical, connected)
    report = Report(f"PostgreSQL {connected.where}")
    started = time.perf_counter()
    async with connected.conn as conn:
        try:
            await _upkeep(cfg, ctx, conn, report)
        except psycopg.Error as exc:
            lost = "lost the connection: " if conn.broken else ""
            report.add(Status.critical, f"{lost}{one_line(exc)}")
    report.metrics["seconds"] = round(time.perf_counter() - started, 3)
    return report.result()


async def _upkeep(cfg: PostgresUpkeepConfig, ctx: RunContext, conn: Conn, report: Report) -> None:
    await _limits(cfg, ctx, conn)
    schema, method = (
        (None, "estimate") if cfg.bloat_method == "estimate" else await m.pgstattuple_schema(conn)
    )
    if cfg.bloat_method == "pgstattuple" and schema is None:
        report.add(Status.critical, f"bloat_method pgstattuple, but {method.removeprefix('estimate: ')}")
        return
    bloat = m.Bloat(conn, schema, await m.block_size(conn))
    tables = [t for t in await m.tables(conn) if m.chosen(t.qualified, cfg.include, cfg.exclude)]
    indexes = [i for i in await m.indexes(conn) if m.chosen(i.table, cfg.include, cfg.exclude)]
    ops = await plan(cfg, ctx, tables, indexes, bloat)
    report.head += f": {len(tables)} tables, {len(indexes)} indexes looked at; bloat by {method}"
    report.metrics.update(tables=float(len(tables)), indexes=float(len(indexes)))
    todo, later = ops[: cfg.max_operations], ops[cfg.max_operations :]
    if not todo:
        report.lines.append("nothing over the thresholds")
    runner = Runner(cfg, conn, bloat)
    counts: dict[str, int] = {}
    for op in todo:
        await _execute(op, runner, ctx, report, counts)
    if not ctx.dry_run and counts.get("vacuum"):
        todo += await _reindex_after_vacuum(cfg, ops, todo, runner, ctx, report, counts)
    if later:
        names = ", ".join(f"{op.action} {op.target}" for op in later[: cfg.list_limit])
        more = f" and {len(later) - cfg.list_limit} more" if len(later) > cfg.list_limit else ""
        report.lines.append(f"left for the next run (max_operations {cfg.max_operations}): {names}{more}")
    for action in ("vacuum", "reindex", "analyze", "drop"):
        report.metrics[f"{action}_done"] = float(counts.get(action, 0))
    report.metrics["operations_planned"] = float(len(todo))
    report.metrics["operations_deferred"] = float(len(later))
    report.metrics["operations_failed"] = float(0 if ctx.dry_run else len(todo) - sum(counts.values()))


async def _reindex_after_vacuum(
    cfg: PostgresUpkeepConfig,
    ops: list[Op],
    todo: list[Op],
    runner: Runner,
    ctx: RunContext,
    report: Report,
    counts: dict[str, int],
) -> list[Op]:
    """VACUUM turns dead index entries into free pages: bloat that only shows now. Measured again,
    so that one run leaves nothing for the next (a dry run cannot know; it says what it saw)."""
    budget = cfg.max_operations - len(todo)
    vacuumed = {op.target for op in todo if op.action == "vacuum"}
    if not cfg.reindex or budget <= 0:
        return []
    planned = {op.target for op in ops if op.action == "reindex"}
    fresh = [i for i in await m.indexes(runner.conn) if i.table in vacuumed and i.qualified not in planned]
    done = (await reindex_ops(cfg, fresh, runner.bloat))[:budget]
    for op in done:
        await _execute(op, runner, ctx, report, counts)
    return done


async def _execute(op: Op, runner: Runner, ctx: RunContext, report: Report, counts: dict[str, int]) -> None:
    if ctx.dry_run:
        report.lines.append(f"dry run: would {op.describe()}")
        report.changes.append(Change(op.action, op.target, {"before": op.before, "why": op.why}))
        return
    outcome = await runner.execute(op)
    report.add(outcome.status, outcome.line)
    for status, note in outcome.notes:
        report.add(status, note)
    report.changes.extend(outcome.changes)
    if outcome.status is Status.ok:
        counts[op.action] = counts.get(op.action, 0) + 1
        _figures(report.metrics, op.action, outcome.before, outcome.after)


async def _limits(cfg: PostgresUpkeepConfig, ctx: RunContext, conn: Conn) -> None:
    statement = min(cfg.statement_timeout.total_seconds(), ctx.seconds_left())
    await conn.execute(
        "SELECT set_config('lock_timeout', %s, false), set_config('statement_timeout', %s, false)",
        (f"{_ms(cfg.lock_timeout.total_seconds())}ms", f"{_ms(statement)}ms"),
    )


def _ms(seconds: float) -> int:
    return max(1, int(seconds * 1000))


def _figures(metrics: dict[str, float], action: str, before: dict[str, Any], after: dict[str, Any]) -> None:
    """Sums over the operations that succeeded, so a run's metrics show what upkeep returned."""
    for key in ("size_bytes", "dead_tuples"):
        if key in before and key in after:
            for when, figures in (("before", before), ("after", after)):
                name = f"{action}_{key}_{when}"
                metrics[name] = metrics.get(name, 0.0) + float(figures[key])
