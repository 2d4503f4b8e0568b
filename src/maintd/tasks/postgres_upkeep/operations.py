"""The operations upkeep chooses (``plan``) and runs (``Runner``), with their before/after figures.

Identifiers reach SQL only as ``psycopg.sql.Identifier``. VACUUM and ANALYZE on a table this
role does not own do not fail: they skip it with a WARNING, which is caught here and reported
as permission denied rather than as done.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import psycopg
from psycopg import errors, sql

from maintd.checks.base import Change, RunContext, Status, format_bytes
from maintd.plan.types import format_duration
from maintd.tasks.postgres_upkeep import PostgresUpkeepConfig
from maintd.tasks.postgres_upkeep import measure as m
from maintd.tasks.postgres_upkeep.connect import Conn, one_line

_VERB = {
    "drop": "DROP INDEX CONCURRENTLY",
    "vacuum": "VACUUM (ANALYZE)",
    "reindex": "REINDEX INDEX CONCURRENTLY",
    "analyze": "ANALYZE",
}
_LEFTOVER = re.compile(m.LEFTOVER_PATTERN)


@dataclass(frozen=True)
class Op:
    action: str  # drop | vacuum | reindex | analyze
    target: str  # schema.name of the table or index
    why: str
    before: dict[str, Any]
    table: m.Table | None = None
    index: m.Index | None = None

    def describe(self) -> str:
        return f"{_VERB[self.action]} {self.target} ({self.why})"


@dataclass
class Outcome:
    status: Status
    line: str
    changes: list[Change] = field(default_factory=list)
    before: dict[str, Any] = field(default_factory=dict)
    after: dict[str, Any] = field(default_factory=dict)
    notes: list[tuple[Status, str]] = field(default_factory=list)


def _pct(ratio: float | None) -> float | None:
    return None if ratio is None else round(100 * ratio, 1)


def _show_pct(value: Any) -> str:
    return "unknown" if value is None else f"{value:g}%"


async def table_figures(table: m.Table, bloat: m.Bloat) -> dict[str, Any]:
    return {
        "size_bytes": table.size,
        "live_tuples": table.live,
        "dead_tuples": table.dead,
        "dead_percent": _pct(table.dead_ratio),
        "bloat_percent": _pct(await bloat.table(table)),
    }


async def index_figures(index: m.Index, bloat: m.Bloat) -> dict[str, Any]:
    return {"size_bytes": index.size, "bloat_percent": _pct(await bloat.index(index))}


async def plan(
    cfg: PostgresUpkeepConfig, ctx: RunContext, tables: list[m.Table], indexes: list[m.Index], bloat: m.Bloat
) -> list[Op]:
    """Every operation the thresholds call for, in the order they should run."""
    ops: list[Op] = []
    if cfg.drop_invalid_leftovers:
        for index in indexes:
            if not index.valid and _LEFTOVER.search(index.name) and not index.busy:
                why = f"invalid leftover of REINDEX CONCURRENTLY on {index.table}, {format_bytes(index.size)}"
                ops.append(Op("drop", index.qualified, why, {"size_bytes": index.size}, index=index))
    big = [t for t in tables if t.size >= cfg.min_table_size]
    vacuumed: set[int] = set()
    if cfg.vacuum:
        due = [
            t for t in big if t.dead >= cfg.vacuum_min_dead_tuples and t.dead_ratio >= cfg.vacuum_dead_ratio
        ]
        for table in sorted(due, key=lambda t: -t.dead):
            vacuumed.add(table.oid)
            why = f"{table.dead} dead tuples, {100 * table.dead_ratio:.1f}% of {table.live + table.dead}"
            ops.append(Op("vacuum", table.qualified, why, await table_figures(table, bloat), table=table))
    if cfg.reindex:
        ops += await reindex_ops(cfg, indexes, bloat)
    if cfg.analyze:
        for table in big:
            stale = _stale(cfg, ctx.clock.now(), table) if table.oid not in vacuumed else None
            if stale:
                why = stale
                before: dict[str, Any] = {
                    "modified_since_analyze": table.modified,
                    "analyzed_at": _iso(table.analyzed_at),
                }
                ops.append(Op("analyze", table.qualified, why, before, table=table))
    return ops


async def reindex_ops(cfg: PostgresUpkeepConfig, indexes: list[m.Index], bloat: m.Bloat) -> list[Op]:
    """REINDEX for the indexes over the bloat threshold, the most wasted bytes first."""
    found: list[tuple[float, Op]] = []
    for index in indexes:
        if not index.valid or index.busy or _LEFTOVER.search(index.name) or index.size < cfg.min_index_size:
            continue
        ratio = await bloat.index(index)
        if ratio is not None and ratio >= cfg.reindex_bloat_ratio:
            why = f"bloat {100 * ratio:.0f}% of {format_bytes(index.size)}"
            figures = {"size_bytes": index.size, "bloat_percent": _pct(ratio)}
            found.append((ratio * index.size, Op("reindex", index.qualified, why, figures, index=index)))
    return [op for _, op in sorted(found, key=lambda pair: -pair[0])]


def _stale(cfg: PostgresUpkeepConfig, now: datetime, table: m.Table) -> str | None:
    if table.analyzed_at is None:
        return "never analyzed"
    age = now - table.analyzed_at
    if cfg.analyze_max_age is not None and age >= cfg.analyze_max_age:
        return f"last analyzed {_age(age)} ago (max {format_duration(cfg.analyze_max_age)})"
    if cfg.analyze_mod_ratio is not None and table.modified >= cfg.analyze_mod_ratio * max(table.live, 1):
        return (
            f"{table.modified} rows changed since the last analyze, "
            f"{100 * table.modified / max(table.live, 1):.0f}% of {table.live} live"
        )
    return None


def _age(age: timedelta) -> str:
    seconds = int(age.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= 2 * size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


class Runner:
    def __init__(self, cfg: PostgresUpkeepConfig, conn: Conn, bloat: m.Bloat) -> None:
        self.cfg = cfg
        self.conn = conn
        self.bloat = bloat
        self.warnings: list[str] = []
        conn.add_notice_handler(self._notice)

    def _notice(self, diag: psycopg.errors.Diagnostic) -> None:
        if diag.severity_nonlocalized == "WARNING" and diag.message_primary:
            self.warnings.append(diag.message_primary)

    async def execute(self, op: Op) -> Outcome:
        """Run ``op``; every outcome but a lost connection (psycopg.OperationalError) is returned."""
        self.warnings.clear()
        started = time.perf_counter()
        try:
            outcome: Outcome = await getattr(self, f"_{op.action}")(op)
        except psycopg.Error as exc:
            if self.conn.broken:
                raise
            outcome = self._failed(op, *self._why(exc))
        seconds = round(time.perf_counter() - started, 3)
        for change in outcome.changes:
            if change.target == op.target:
                change.detail["seconds"] = seconds
        if outcome.status is Status.ok:
            outcome.line += f", {seconds:.2f}s"
        if op.action == "reindex" and outcome.status is not Status.ok and op.index is not None:
            await self._after_failed_reindex(op.index, outcome)
        return outcome

    def _why(self, exc: psycopg.Error) -> tuple[Status, str]:
        """Locks and timeouts pass (a warning: the next run tries again); the rest needs a person."""
        if isinstance(exc, errors.LockNotAvailable):
            return Status.warning, f"no lock within lock_timeout {format_duration(self.cfg.lock_timeout)}"
        if isinstance(exc, errors.QueryCanceled):
            return (
                Status.warning,
                f"cancelled at statement_timeout {format_duration(self.cfg.statement_timeout)}",
            )
        if isinstance(exc, errors.InsufficientPrivilege):
            return Status.critical, f"permission denied: {one_line(exc)}"
        return Status.critical, one_line(exc)

    def _failed(self, op: Op, status: Status, why: str) -> Outcome:
        change = Change(op.action, op.target, {"before": op.before, "succeeded": False, "error": why})
        return Outcome(status, f"{op.action} {op.target} failed: {why}", [change])

    def _skipped(self, op: Op) -> Outcome | None:
        """VACUUM/ANALYZE on a table this role does not own: a WARNING, not an error."""
        skipped = [w for w in self.warnings if w.startswith("skipping")]
        return self._failed(op, Status.critical, f"permission denied: {skipped[0]}") if skipped else None

    async def _vacuum(self, op: Op) -> Outcome:
        assert op.table is not None
        await self.conn.execute(sql.SQL("VACUUM (ANALYZE) {}").format(op.table.ident))
        if failed := self._skipped(op):
            return failed
        after = await self._table_after(op.table)
        line = (
            f"vacuum {op.target}: dead tuples {op.before['dead_tuples']} -> {after.get('dead_tuples')}, "
            f"size {_size(op.before)} -> {_size(after)}, "
            f"bloat {_show_pct(op.before['bloat_percent'])} -> {_show_pct(after.get('bloat_percent'))}"
        )
        change = Change("vacuum", op.target, {"before": op.before, "after": after})
        outcome = Outcome(Status.ok, line, [change], op.before, after)
        warn = self.cfg.table_bloat_warn_ratio
        left = after.get("bloat_percent")
        if warn is not None and left is not None and left >= 100 * warn:
            note = f"{op.target}: bloat {left:g}% after VACUUM (warning at {100 * warn:g}%); "
            outcome.notes.append((Status.warning, note + "VACUUM FULL or pg_repack in a window returns it"))
        return outcome

    async def _table_after(self, table: m.Table) -> dict[str, Any]:
        found = await m.tables(self.conn, table.oid)
        return await table_figures(found[0], self.bloat) if found else {}

    async def _analyze(self, op: Op) -> Outcome:
        assert op.table is not None
        await self.conn.execute(sql.SQL("ANALYZE {}").format(op.table.ident))
        if failed := self._skipped(op):
            return failed
        found = await m.tables(self.conn, op.table.oid)
        after = (
            {"modified_since_analyze": found[0].modified, "analyzed_at": _iso(found[0].analyzed_at)}
            if found
            else {}
        )
        line = f"analyze {op.target}: {op.why}; rows changed since: {op.before['modified_since_analyze']} -> "
        line += str(after.get("modified_since_analyze"))
        return Outcome(Status.ok, line, [Change("analyze", op.target, {"before": op.before, "after": after})])

    async def _reindex(self, op: Op) -> Outcome:
        assert op.index is not None
        await self.conn.execute(sql.SQL("REINDEX INDEX CONCURRENTLY {}").format(op.index.ident))
        found = await m.indexes(self.conn, op.index.oid)
        after = await index_figures(found[0], self.bloat) if found else {}
        if not found:  # REINDEX CONCURRENTLY swaps in a new relation under the old name
            by_name = [i for i in await m.indexes(self.conn) if i.qualified == op.target]
            after = await index_figures(by_name[0], self.bloat) if by_name else {}
        line = (
            f"reindex {op.target}: size {_size(op.before)} -> {_size(after)}, "
            f"bloat {_show_pct(op.before['bloat_percent'])} -> {_show_pct(after.get('bloat_percent'))}"
        )
        outcome = Outcome(
            Status.ok, line, [Change("reindex", op.target, {"before": op.before, "after": after})]
        )
        outcome.before, outcome.after = op.before, after
        return outcome

    async def _drop(self, op: Op) -> Outcome:
        assert op.index is not None
        await self.conn.execute(sql.SQL("DROP INDEX CONCURRENTLY IF EXISTS {}").format(op.index.ident))
        detail = {"before": op.before, "table": op.index.table, "reason": "invalid leftover"}
        line = f"dropped invalid leftover index {op.target} on {op.index.table} ({_size(op.before)})"
        return Outcome(Status.ok, line, [Change("drop", op.target, detail)], op.before, {"size_bytes": 0})

    async def _after_failed_reindex(self, index: m.Index, outcome: Outcome) -> None:
        """A failed REINDEX CONCURRENTLY leaves its new index behind, invalid: drop it now, or say so."""
        for left in await m.indexes(self.conn):
            if left.valid or left.table != index.table or not left.name.startswith(f"{index.name}_ccnew"):
                continue
            try:
                await self.conn.execute(sql.SQL("DROP INDEX CONCURRENTLY IF EXISTS {}").format(left.ident))
            except psycopg.Error as exc:
                if self.conn.broken:
                    raise
                why = self._why(exc)[1]
                outcome.notes.append(
                    (Status.warning, f"left {left.qualified} (invalid) for the next run: {why}")
                )
                continue
            outcome.notes.append((Status.ok, f"dropped {left.qualified}, the failed attempt's invalid index"))
            outcome.changes.append(
                Change(
                    "drop", left.qualified, {"size_bytes": left.size, "reason": "failed REINDEX CONCURRENTLY"}
                )
            )


def _size(figures: dict[str, Any]) -> str:
    size = figures.get("size_bytes")
    return "unknown" if size is None else format_bytes(size)
