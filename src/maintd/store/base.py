"""What every table is built on: the declarative base, its naming convention, aware UTC times
and JSON that is JSONB on PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from json.encoder import c_make_encoder as _c_make_encoder  # type: ignore[attr-defined]
from json.encoder import encode_basestring_ascii as _encode_ascii
from typing import Any

from sqlalchemy import JSON, DateTime, MetaData, TypeDecorator
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase

from maintd.clock import utc

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "pk": "pk_%(table_name)s",
}

Json = JSON().with_variant(JSONB(), "postgresql")

# json.dumps(obj) with its defaults, minus its Python layers (dumps -> JSONEncoder.encode ->
# iterencode, which makes a new C encoder on every call): ~24 k instructions for a run's metrics,
# ~15 k this way (callgrind, CPython 3.11). The same encoder with the same settings (circular
# references refused, NaN allowed, ASCII only), so the same text; the store's engines use it.
_encoder_default = json.JSONEncoder().default


def json_dumps(obj: Any) -> str:
    """``json.dumps(obj)``, for the store's JSON columns."""
    if _c_make_encoder is None:  # a Python without the C accelerator
        return json.dumps(obj)
    encode = _c_make_encoder({}, _encoder_default, _encode_ascii, None, ": ", ", ", False, False, True)
    return "".join(encode(obj, 0))


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC in and out, on SQLite (which stores naive text) as on PostgreSQL."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        value = utc(value)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return utc(value) if value is not None else None

    # On SQLite the two steps (utc() and replace() here, then the dialect's text formatting or
    # parsing) cost ~2 µs a value, most of it in keyword-argument parsing: with the three
    # timestamps a recorded run writes and the two it reads back, ~0.1 M instructions a run.
    # For an aware UTC value (every clock's and every read-back's) one step gives the same text
    # and the same datetime; anything else takes the two steps. Checked against them on a sample
    # when the processor is made, so a changed storage format falls back to the general path.

    def bind_processor(self, dialect: Dialect) -> Callable[[Any], Any] | None:
        general = super().bind_processor(dialect)
        if dialect.name != "sqlite" or general is None:
            return general

        def process(value: Any) -> Any:
            if (
                value is not None
                and value.__class__ is datetime
                and value.tzinfo is UTC
                and value.year >= 1000
            ):
                return _sqlite_text(value)
            return general(value)

        return process if process(_SAMPLE) == general(_SAMPLE) else general

    def result_processor(self, dialect: Dialect, coltype: object) -> Callable[[Any], Any] | None:
        general = super().result_processor(dialect, coltype)
        if dialect.name != "sqlite" or general is None:
            return general

        def process(value: Any) -> Any:
            if value.__class__ is str:
                try:  # naive text is UTC: parsed with the offset it stands for, aware at once
                    parsed = _fromisoformat(value + "+00:00")
                except ValueError:  # text with an offset of its own, or not a timestamp
                    pass
                else:
                    if parsed.tzinfo is UTC:  # a date alone parses, offset ignored: the general path
                        return parsed
            return general(value)

        sample = _sqlite_text(_SAMPLE)
        return process if process(sample) == general(sample) else general


_D2 = tuple(f"{i:02d}" for i in range(100))


def _sqlite_text(v: datetime, d: tuple[str, ...] = _D2) -> str:
    """SQLAlchemy's SQLite DATETIME text (``%04d-%02d-%02d %02d:%02d:%02d.%06d``) of a year >= 1000,
    from two-digit pieces: ~6 k instructions, against ~11 k for that % formatting and ~13 k for
    ``isoformat()`` (callgrind, CPython 3.11)."""
    y, us = v.year, v.microsecond
    return (
        f"{d[y // 100]}{d[y % 100]}-{d[v.month]}-{d[v.day]} {d[v.hour]}:{d[v.minute]}:{d[v.second]}"
        f".{d[us // 10000]}{d[us // 100 % 100]}{d[us % 100]}"
    )


_SAMPLE = datetime(2026, 11, 27, 1, 2, 3, 4, tzinfo=UTC)
_fromisoformat = datetime.fromisoformat


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
