"""The figures upkeep decides by: per table and index size, dead tuples, statistics age, bloat.

Bloat is the share of a relation's pages that its live data would not need. With pgstattuple
(installed in the database, and usable by this role) tables are read by ``pgstattuple_approx``
(the visibility map skips all-visible pages) and btree indexes by ``pgstatindex``; otherwise a
catalog estimate compares the pages live rows need (``pg_stats`` widths, fill factor, tuple
headers) with the pages the relation has. The estimate needs statistics: without them a
relation's bloat is unknown, never guessed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from fnmatch import fnmatchcase
from typing import Any

from psycopg import sql

from maintd.tasks.postgres_upkeep.connect import Conn

_USER_RELATIONS = """
  AND tn.nspname NOT IN ('pg_catalog', 'information_schema') AND tn.nspname NOT LIKE 'pg\\_toast%%'
  AND tn.nspname NOT LIKE 'pg\\_temp%%' AND t.relkind IN ('r', 'm')
  AND (%(oid)s::int8 IS NULL OR {oid} = %(oid)s::int8)
"""

_TABLES = (
    """
SELECT t.oid::int8 AS oid, tn.nspname AS schema, t.relname AS name,
       pg_relation_size(t.oid)::int8 AS size,
       coalesce(s.n_live_tup, 0)::int8 AS live, coalesce(s.n_dead_tup, 0)::int8 AS dead,
       coalesce(s.n_mod_since_analyze, 0)::int8 AS modified,
       greatest(s.last_analyze, s.last_autoanalyze) AS analyzed_at,
       greatest(s.last_vacuum, s.last_autovacuum) AS vacuumed_at,
       coalesce((SELECT option_value::int FROM pg_options_to_table(t.reloptions)
                 WHERE option_name = 'fillfactor'), 100) AS fillfactor
FROM pg_class t JOIN pg_namespace tn ON tn.oid = t.relnamespace
LEFT JOIN pg_stat_all_tables s ON s.relid = t.oid
WHERE true"""
    + _USER_RELATIONS.format(oid="t.oid")
    + "ORDER BY 2, 3"
)

_INDEXES = (
    """
SELECT ic.oid::int8 AS oid, n.nspname AS schema, ic.relname AS name,
       tn.nspname AS table_schema, t.relname AS table_name, am.amname AS method,
       i.indisvalid AS valid, i.indpred IS NOT NULL AS partial, i.indnatts AS columns,
       pg_relation_size(ic.oid)::int8 AS size, ic.reltuples::float8 AS reltuples,
       coalesce((SELECT option_value::int FROM pg_options_to_table(ic.reloptions)
                 WHERE option_name = 'fillfactor'), 90) AS fillfactor,
       coalesce(s.n_live_tup, 0)::int8 AS table_live,
       EXISTS (SELECT 1 FROM pg_stat_progress_create_index p WHERE p.relid = t.oid) AS busy
FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid
JOIN pg_namespace n ON n.oid = ic.relnamespace
JOIN pg_class t ON t.oid = i.indrelid JOIN pg_namespace tn ON tn.oid = t.relnamespace
JOIN pg_am am ON am.oid = ic.relam
LEFT JOIN pg_stat_all_tables s ON s.relid = t.oid
WHERE true"""
    + _USER_RELATIONS.format(oid="ic.oid")
    + "ORDER BY 2, 3"
)

_TABLE_WIDTH = """
SELECT count(s.avg_width) AS with_stats, count(*) AS columns, coalesce(sum(s.avg_width), 0)::float8 AS width
FROM pg_attribute a
LEFT JOIN pg_stats s ON s.schemaname = %(schema)s AND s.tablename = %(name)s
                    AND s.attname = a.attname AND NOT s.inherited
WHERE a.attrelid = %(oid)s::int8::oid AND a.attnum > 0 AND NOT a.attisdropped
"""

_INDEX_WIDTH = """
SELECT count(*) FILTER (WHERE k.attnum = 0) AS expressions, count(s.avg_width) AS with_stats,
       coalesce(sum(s.avg_width), 0)::float8 AS width
FROM pg_index i
CROSS JOIN LATERAL unnest(i.indkey::int2[]) AS k(attnum)
JOIN pg_class t ON t.oid = i.indrelid JOIN pg_namespace tn ON tn.oid = t.relnamespace
LEFT JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
LEFT JOIN pg_stats s ON s.schemaname = tn.nspname AND s.tablename = t.relname
                    AND s.attname = a.attname AND NOT s.inherited
WHERE i.indexrelid = %(oid)s::int8::oid
"""

_PGSTATTUPLE = """
SELECT e.extnamespace::regnamespace::text AS schema,
       has_function_privilege(format('%I.pgstattuple_approx(regclass)', n.nspname), 'EXECUTE')
       AND has_function_privilege(format('%I.pgstatindex(regclass)', n.nspname), 'EXECUTE') AS usable
FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
WHERE e.extname = 'pgstattuple'
"""

LEFTOVER_PATTERN = "_cc(new|old)[0-9]*$"
"""REINDEX CONCURRENTLY names its new index NAME_ccnew (NAME_ccnew1, ... when taken) and the old
one NAME_ccold before dropping it; a failure leaves either behind, invalid."""

_PAGE_HEADER = 24
_BTREE_SPECIAL = 16
_HEAP_TUPLE_HEADER = 24
_INDEX_TUPLE_HEADER = 8
_LINE_POINTER = 4


@dataclass(frozen=True)
class Table:
    oid: int
    schema: str
    name: str
    size: int
    live: int
    dead: int
    modified: int  # rows changed since the last analyze
    analyzed_at: datetime | None
    vacuumed_at: datetime | None
    fillfactor: int

    @property
    def qualified(self) -> str:
        return f"{self.schema}.{self.name}"

    @property
    def dead_ratio(self) -> float:
        total = self.live + self.dead
        return self.dead / total if total else 0.0

    @property
    def ident(self) -> sql.Identifier:
        return sql.Identifier(self.schema, self.name)


@dataclass(frozen=True)
class Index:
    oid: int
    schema: str
    name: str
    table_schema: str
    table_name: str
    method: str
    valid: bool
    partial: bool
    columns: int
    size: int
    reltuples: float
    fillfactor: int
    table_live: int
    busy: bool  # an index build (CREATE INDEX or REINDEX) is running on its table now

    @property
    def qualified(self) -> str:
        return f"{self.schema}.{self.name}"

    @property
    def table(self) -> str:
        return f"{self.table_schema}.{self.table_name}"

    @property
    def ident(self) -> sql.Identifier:
        return sql.Identifier(self.schema, self.name)


def chosen(name: str, include: list[str], exclude: list[str]) -> bool:
    return any(fnmatchcase(name, p) for p in include) and not any(fnmatchcase(name, p) for p in exclude)


async def _rows(conn: Conn, query: str | sql.Composed, params: dict[str, Any]) -> list[dict[str, Any]]:
    cursor = await conn.execute(query, params or None)
    return [dict(row) for row in await cursor.fetchall()]


async def tables(conn: Conn, oid: int | None = None) -> list[Table]:
    return [Table(**row) for row in await _rows(conn, _TABLES, {"oid": oid})]


async def indexes(conn: Conn, oid: int | None = None) -> list[Index]:
    return [Index(**row) for row in await _rows(conn, _INDEXES, {"oid": oid})]


async def pgstattuple_schema(conn: Conn) -> tuple[str | None, str]:
    """pgstattuple's schema when this role may use it, else None; and why, for the output."""
    rows = await _rows(conn, _PGSTATTUPLE, {})
    if not rows:
        return None, "estimate: pgstattuple is not installed in this database"
    if not rows[0]["usable"]:
        return None, "estimate: this role may not execute pgstattuple (grant pg_stat_scan_tables)"
    return str(rows[0]["schema"]), "pgstattuple"


class Bloat:
    """Measures bloat by the chosen method; ``None`` when it cannot be known."""

    def __init__(self, conn: Conn, schema: str | None, block_size: int) -> None:
        self.conn = conn
        self.schema = schema
        self.block_size = block_size

    async def table(self, table: Table) -> float | None:
        if table.size == 0:
            return None
        if self.schema is not None:
            query = sql.SQL(
                "SELECT table_len, dead_tuple_len, approx_free_space FROM {}(%(oid)s::int8::oid::regclass)"
            ).format(sql.Identifier(self.schema, "pgstattuple_approx"))
            (row,) = await _rows(self.conn, query, {"oid": table.oid})
            reserve = row["table_len"] * (1 - table.fillfactor / 100)
            wasted = row["dead_tuple_len"] + row["approx_free_space"] - reserve
            return _ratio(wasted / row["table_len"]) if row["table_len"] else None
        (width,) = await _rows(
            self.conn, _TABLE_WIDTH, {"oid": table.oid, "schema": table.schema, "name": table.name}
        )
        if width["columns"] == 0 or width["with_stats"] < width["columns"]:
            return None  # not analyzed yet
        tuple_bytes = _align(_HEAP_TUPLE_HEADER + width["width"]) + _LINE_POINTER
        per_page = (self.block_size - _PAGE_HEADER) * table.fillfactor / 100
        needed = math.ceil(table.live * tuple_bytes / per_page)
        return _ratio(1 - needed / (table.size / self.block_size))

    async def index(self, index: Index) -> float | None:
        if index.method != "btree" or not index.valid or index.size == 0:
            return None
        pages = index.size / self.block_size
        if self.schema is not None:
            query = sql.SQL(
                "SELECT avg_leaf_density, leaf_pages FROM {}(%(oid)s::int8::oid::regclass)"
            ).format(sql.Identifier(self.schema, "pgstatindex"))
            (row,) = await _rows(self.conn, query, {"oid": index.oid})
            density = row["avg_leaf_density"]
            if density is None or math.isnan(density):
                return None  # no leaf pages with tuples
            return _ratio(1 - row["leaf_pages"] * density / index.fillfactor / pages)
        (width,) = await _rows(self.conn, _INDEX_WIDTH, {"oid": index.oid})
        if width["expressions"] or width["with_stats"] < index.columns:
            return None  # an expression, or columns not analyzed yet
        entries = index.reltuples if index.partial else float(index.table_live)
        if entries < 0:
            return None
        entry_bytes = _align(_INDEX_TUPLE_HEADER + width["width"]) + _LINE_POINTER
        per_page = (self.block_size - _PAGE_HEADER - _BTREE_SPECIAL) * index.fillfactor / 100
        needed = math.ceil(entries * entry_bytes / per_page) + 1  # + the metapage
        return _ratio(1 - needed / pages)


def _align(size: float) -> float:
    return math.ceil(size / 8) * 8


def _ratio(value: float) -> float:
    return round(min(1.0, max(0.0, value)), 4)


async def block_size(conn: Conn) -> int:
    (row,) = await _rows(conn, "SELECT current_setting('block_size')::int AS size", {})
    return int(row["size"])
