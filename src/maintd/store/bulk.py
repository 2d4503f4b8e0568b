"""Writing many rows at once: runs, schedules, alerts, events.

The ORM's bulk UPDATE by primary key and bulk INSERT spend more CPU on per-row
bookkeeping (and, for rows loaded in the session, on synchronising them) than
the database spends on the statements: measured ~40 % of a claim and of a
recorded batch. These send the same SQL with plain Core statements.

On PostgreSQL many rows go in as ``INSERT ... SELECT FROM unnest(one array per
column)``, and change as ``UPDATE ... FROM unnest(...)``: one statement, parsed and
prepared once whatever the number of rows. An ``executemany`` sends a Bind and an
Execute per row through the pipeline, each row's parameters dumped on their own
(~12 % of the drain's instructions, a third of a claim's and of a recorded
batch's). The arrays go in psycopg's binary format: its text format escapes
every element with a regular expression in Python, which cost more than the
executemany it replaced.

On SQLite (no round trips to save) the statement is compiled once per set of
columns and the rows are sent as tuples through ``exec_driver_sql``, each value
converted by its column type's own bind processor, a value seen before in the
same call (the batch's shared timestamps, NULLs) converted once. Core's
per-row parameter handling was ~40 % of a recorded batch's CPU; the three
timestamps a run's record carries are one and the same.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Table, bindparam, insert, select, update
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import Session
from sqlalchemy.sql.dml import UpdateBase

_Processor = Callable[[Any], Any] | None
_Compiled = tuple[str, tuple[str, ...], tuple[_Processor, ...]]  # SQL, bind names in order, processors
_COMPILED: dict[tuple[str, str, tuple[str, ...], str], _Compiled] = {}  # (what, table, columns, dialect)
# Values of these types are converted once per distinct value in a call (hashable; equal ones convert
# alike: True and 1 are the same key, and convert the same).
_ONCE = frozenset((datetime, type(None), str, int, bool))


def update_by_id(session: Session, table: Table, changes: Sequence[dict[str, object]]) -> None:
    """``UPDATE table SET ... WHERE id = :id`` for each dict (its ``id`` and the columns to set).

    Dicts setting the same columns go in one statement on PostgreSQL (``UPDATE ... FROM unnest``)
    when their ids are distinct, else in one executemany, in order; flushes nothing else.
    """
    if not changes:
        return  # no connection taken for nothing
    groups: dict[tuple[str, ...], list[dict[str, object]]] = {}
    for change in changes:
        groups.setdefault(tuple(change), []).append(change)
    postgresql = session.connection().dialect.name == "postgresql"
    for columns, rows in groups.items():
        names = [name for name in columns if name != "id"]
        if postgresql and len(rows) > 1 and len({row["id"] for row in rows}) == len(rows):
            # Distinct ids only: of several rows of the array matching one row, one is applied.
            _unnest_execute(session, "update", table, rows, ("id", *names))
            continue

        def statement(names: list[str] = names) -> UpdateBase:
            values: dict[str, Any] = {n: bindparam(n) for n in names}
            return update(table).where(table.c.id == bindparam("row_id")).values(values)

        # Every key of the parameters would be SET too: "id" goes in as row_id only.
        _executemany(session, "update", table, statement, rows, ("row_id", *names), {"row_id": "id"})


def insert_rows(session: Session, table: Table, rows: Sequence[dict[str, object]]) -> None:
    """``INSERT`` every dict (all with the same keys: column names), in their order, in one
    statement on PostgreSQL and one executemany on SQLite; flushes nothing."""
    if len(rows) > 1 and session.connection().dialect.name == "postgresql":
        _unnest_execute(session, "insert", table, rows, tuple(rows[0]))
    elif rows:
        _executemany(session, "insert", table, lambda: insert(table), rows, tuple(rows[0]))


def select_by_ids(
    session: Session, table: Table, columns: tuple[str, ...], ids: Sequence[object]
) -> list[Any]:
    """``SELECT columns FROM table WHERE id IN ids``, as plain tuples in no particular order.

    On SQLite the SQL is written with one placeholder per id and each column converted by its
    type's result processor: SQLAlchemy's expanding IN was ~9 µs an id (naming and processing a
    bind parameter per id), more than the query.
    """
    if not ids:
        return []
    connection = session.connection()
    dialect = connection.dialect
    if not dialect.positional:  # PostgreSQL (psycopg): Core's statement, ids as one expanding parameter
        stmt = _SELECTS.get((table.name, columns))
        if stmt is None:
            stmt = select(*(table.c[c] for c in columns)).where(
                table.c.id.in_(bindparam("ids", expanding=True))
            )
            _SELECTS[(table.name, columns)] = stmt
        return [tuple(row) for row in connection.execute(stmt, {"ids": list(ids)})]
    key = (table.name, columns, dialect.name)
    processors = _RESULT_PROCESSORS.get(key)
    if processors is None:
        processors = _RESULT_PROCESSORS[key] = tuple(
            table.c[c].type.dialect_impl(dialect).result_processor(dialect, None) for c in columns
        )
    names = ", ".join(f'"{c}"' for c in columns)
    rows: list[Any] = []
    for start in range(0, len(ids), _IDS_PER_SELECT):  # under SQLite's limit on placeholders
        chunk = tuple(ids[start : start + _IDS_PER_SELECT])
        sql = f'SELECT {names} FROM "{table.name}" WHERE id IN ({", ".join(["?"] * len(chunk))})'
        rows.extend(connection.exec_driver_sql(sql, chunk).fetchall())
    converting = [(i, p) for i, p in enumerate(processors) if p is not None]
    if not converting:
        return [tuple(row) for row in rows]
    out = []
    for row in rows:
        values = list(row)
        for i, process in converting:
            values[i] = process(values[i])
        out.append(tuple(values))
    return out


_IDS_PER_SELECT = 500
_SELECTS: dict[tuple[str, tuple[str, ...]], Any] = {}
_RESULT_PROCESSORS: dict[tuple[str, tuple[str, ...], str], tuple[_Processor, ...]] = {}


def _executemany(
    session: Session,
    what: str,
    table: Table,
    statement: Callable[[], UpdateBase],
    rows: Sequence[dict[str, object]],
    keys: tuple[str, ...],
    renamed: dict[str, str] | None = None,
) -> None:
    """Execute ``statement()`` for each row; bind parameter ``key`` takes ``row[renamed.get(key, key)]``.

    On SQLite the statement is built only the first time a set of columns is seen: building the
    statements of every batch was ~0.7 M instructions a recorded batch (runs, schedules, events).
    """
    renamed = renamed or {}
    connection = session.connection()
    dialect = connection.dialect
    if not dialect.positional:  # PostgreSQL (psycopg): Core's own path, with its insertmanyvalues
        session.execute(statement(), [{key: row[renamed.get(key, key)] for key in keys} for row in rows])
        return
    sql, names, processors = _compiled(what, table, keys, statement, dialect)
    columns = [
        _column(rows, renamed.get(name, name), process)
        for name, process in zip(names, processors, strict=True)
    ]
    connection.exec_driver_sql(sql, list(zip(*columns, strict=True)))


def _unnest_execute(
    session: Session, what: str, table: Table, rows: Sequence[dict[str, object]], columns: tuple[str, ...]
) -> None:
    connection = session.connection()
    sql, processors = _unnest(what, table, columns, connection.dialect)
    arrays = {c: _column(rows, c, process) for c, process in zip(columns, processors, strict=True)}
    # The driver's SQL as it is: the values are already what the columns' types bind.
    connection.exec_driver_sql(sql, arrays)


@functools.lru_cache(maxsize=64)
def _unnest(
    what: str, table: Table, columns: tuple[str, ...], dialect: Dialect
) -> tuple[str, tuple[_Processor, ...]]:
    quote = dialect.identifier_preparer.quote
    names = ", ".join(quote(c) for c in columns)
    # %(name)b: psycopg's binary format.
    arrays = ", ".join(f"%({c})b::{table.c[c].type.compile(dialect)}[]" for c in columns)
    name = dialect.identifier_preparer.format_table(table)
    if what == "insert":
        # WITH ORDINALITY and ORDER BY: ids from a sequence follow the rows' order by definition,
        # not by the plan's habit (the event log is read in id order).
        sql = (
            f"INSERT INTO {name} ({names}) SELECT {names}"
            f" FROM unnest({arrays}) WITH ORDINALITY AS v ({names}, n) ORDER BY n"
        )
    else:
        sets = ", ".join(f"{quote(c)} = v.{quote(c)}" for c in columns if c != "id")
        sql = f"UPDATE {name} AS t SET {sets} FROM unnest({arrays}) AS v ({names}) WHERE t.id = v.id"
    processors = tuple(table.c[c].type.dialect_impl(dialect).bind_processor(dialect) for c in columns)
    return sql, processors


def _column(rows: Sequence[dict[str, object]], field: str, process: _Processor) -> list[Any]:
    """The rows' values of ``field`` as the column's type binds them."""
    # Straight from the caller's dicts: a second dict per row was ~5 % of a recorded batch.
    values = [row[field] for row in rows]
    if process is None:
        return values
    if set(map(type, values)) <= _ONCE:
        converted = {value: process(value) for value in set(values)}
        return [converted[value] for value in values]
    if all(value is values[0] for value in values):
        # One shared object (a claim's empty metrics): one JSON encoding, not one per row.
        return [process(values[0])] * len(values)
    return list(map(process, values))


def _compiled(
    what: str, table: Table, keys: tuple[str, ...], statement: Callable[[], UpdateBase], dialect: Dialect
) -> _Compiled:
    cache_key = (what, table.name, keys, dialect.name)
    found = _COMPILED.get(cache_key)
    if found is None:
        compiled = statement().compile(dialect=dialect, column_keys=list(keys))
        names = tuple(compiled.positiontup or ())
        processors = tuple(
            compiled.binds[name].type.dialect_impl(dialect).bind_processor(dialect) for name in names
        )
        found = _COMPILED[cache_key] = (compiled.string, names, processors)
    return found
