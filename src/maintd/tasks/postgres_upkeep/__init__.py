"""``postgres-upkeep``: weekly VACUUM (ANALYZE), REINDEX INDEX CONCURRENTLY and ANALYZE where the
figures call for it, with before/after figures.

Dead tuples and last (auto)vacuum/analyze come from ``pg_stat_user_tables``; table and index
bloat from pgstattuple when the extension is installed in the database (and this role may use
it), else from a catalog estimate. Leftover invalid ``*_ccnew`` / ``*_ccold`` indexes of a
failed REINDEX CONCURRENTLY are dropped concurrently. Every statement runs under a lock_timeout,
so maintenance never queues behind (and in front of) the application's locks. psycopg is
imported only when a run starts (``upkeep`` holds what uses it).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Literal, Self

from pydantic import ByteSize, Field, model_validator

from maintd.checks.base import Kind, lazy
from maintd.checks.postgres.config import PostgresConnection
from maintd.plan.types import Duration

__all__ = ["KIND", "PostgresConnection", "PostgresUpkeepConfig"]


class PostgresUpkeepConfig(PostgresConnection):
    include: list[str] = Field(
        default=["*"], min_length=1, description="tables looked at: shell patterns on schema.table"
    )
    exclude: list[str] = Field(default=[], description="tables left alone: shell patterns on schema.table")
    bloat_method: Literal["auto", "pgstattuple", "estimate"] = Field(
        default="auto",
        description="auto: pgstattuple when installed and usable, else the catalog estimate",
    )
    vacuum: bool = Field(default=True, description="VACUUM (ANALYZE) tables over the dead tuple thresholds")
    vacuum_dead_ratio: float = Field(
        default=0.2, gt=0, le=1, description="VACUUM when dead / (live + dead) tuples reach this"
    )
    vacuum_min_dead_tuples: int = Field(
        default=1000, ge=0, description="... and the table has at least this many dead tuples"
    )
    min_table_size: ByteSize = Field(
        default=ByteSize(2**20), description="smaller tables are left alone (VACUUM, ANALYZE, bloat)"
    )
    reindex: bool = Field(default=True, description="REINDEX INDEX CONCURRENTLY indexes over the bloat ratio")
    reindex_bloat_ratio: float = Field(
        default=0.3, gt=0, lt=1, description="REINDEX when an index's estimated bloat reaches this share"
    )
    min_index_size: ByteSize = Field(default=ByteSize(2**20), description="smaller indexes are left alone")
    table_bloat_warn_ratio: float | None = Field(
        default=0.5,
        gt=0,
        lt=1,
        description="warning when a table's bloat stays at or above this after VACUUM (VACUUM FULL "
        "or pg_repack, in a window, returns it); null: not judged",
    )
    analyze: bool = Field(default=True, description="ANALYZE tables whose statistics are stale")
    analyze_max_age: Duration | None = Field(
        default=timedelta(days=7),
        description="stale when not (auto)analyzed for this long, or never; null: age not judged",
    )
    analyze_mod_ratio: float | None = Field(
        default=0.2,
        gt=0,
        description="stale when rows changed since the last analyze reach this share of live rows",
    )
    drop_invalid_leftovers: bool = Field(
        default=True, description="DROP INDEX CONCURRENTLY invalid *_ccnew / *_ccold indexes"
    )
    max_operations: int = Field(default=20, ge=1, le=10_000, description="most operations in one run")
    lock_timeout: Duration = Field(
        default=timedelta(seconds=5), description="a statement waiting this long for a lock gives up"
    )
    statement_timeout: Duration = Field(
        default=timedelta(hours=1), description="a statement running this long is cancelled"
    )
    list_limit: int = Field(default=20, ge=1, le=1000, description="most skipped candidates listed")

    @model_validator(mode="after")
    def _something_to_do(self) -> Self:
        if not (self.vacuum or self.reindex or self.analyze or self.drop_invalid_leftovers):
            raise ValueError("vacuum, reindex, analyze and drop_invalid_leftovers are all off")
        if self.lock_timeout <= timedelta(0) or self.statement_timeout <= timedelta(0):
            raise ValueError("lock_timeout and statement_timeout must be above 0")
        return self


KIND = Kind(
    name="postgres-upkeep",
    config=PostgresUpkeepConfig,
    build=lazy("maintd.tasks.postgres_upkeep.upkeep"),
    summary="VACUUM (ANALYZE), REINDEX CONCURRENTLY, ANALYZE by dead tuples, bloat and stale statistics",
    changes=lambda _config: True,
)
