"""Small value types the plan is written in: durations and secret references."""

from __future__ import annotations

import os
import re
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any

from pydantic import BeforeValidator, GetCoreSchemaHandler, PlainSerializer, WithJsonSchema
from pydantic_core import core_schema

_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(value: Any) -> timedelta:
    """``30s``, ``5m``, ``1h30m``, ``2d``, ``500ms`` or a number of seconds."""
    if isinstance(value, timedelta):
        return value
    if isinstance(value, bool):
        raise ValueError("a duration is a number of seconds or a string like '30s', '5m', '1h30m'")
    if isinstance(value, int | float):
        if value < 0:
            raise ValueError("a duration cannot be negative")
        return timedelta(seconds=value)
    if isinstance(value, str):
        text = value.strip().replace(" ", "")
        pos, total = 0, 0.0
        for match in _DURATION_PART.finditer(text):
            if match.start() != pos:
                break
            total += float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
            pos = match.end()
        if text and pos == len(text):
            return timedelta(seconds=total)
    raise ValueError(
        f"{value!r} is not a duration: use a number of seconds or a string like '30s', '5m', '1h30m'"
    )


def format_duration(value: timedelta) -> str:
    seconds = value.total_seconds()
    if seconds and seconds == int(seconds):
        for unit in ("w", "d", "h", "m"):
            size = _UNIT_SECONDS[unit]
            if seconds % size == 0:
                return f"{int(seconds // size)}{unit}"
        return f"{int(seconds)}s"
    return f"{seconds}s"


Duration = Annotated[
    timedelta,
    BeforeValidator(parse_duration),
    PlainSerializer(format_duration, return_type=str, when_used="json"),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string", "pattern": r"^\s*(\d+(\.\d+)?\s*(ms|s|m|h|d|w)\s*)+$"},
                {"type": "number", "minimum": 0},
            ],
            "description": "seconds, or a string like '500ms', '30s', '5m', '1h30m', '2d'",
        }
    ),
]


class SecretRef(str):
    """A reference to a secret, never the secret: ``env:NAME`` or ``file:/path``.

    The value behind it is read only when a plugin needs it (``resolve``), and
    never printed: ``repr`` and logs show the reference.
    """

    __slots__ = ()

    @property
    def scheme(self) -> str:
        return self.split(":", 1)[0]

    @property
    def location(self) -> str:
        return self.split(":", 1)[1]

    def problem(self) -> str | None:
        """Why ``resolve`` would fail now, or None when it would work."""
        if self.scheme == "env":
            return (
                None
                if self.location in os.environ
                else (f"secret {self} refers to environment variable {self.location}, which is not set")
            )
        path = Path(self.location)
        if not path.is_file():
            return f"secret {self} refers to {path}, which is not a readable file"
        if not os.access(path, os.R_OK):
            return f"secret {self} refers to {path}, which this process may not read"
        return None

    def resolve(self) -> str:
        problem = self.problem()
        if problem:
            raise LookupError(problem)
        if self.scheme == "env":
            return os.environ[self.location]
        return Path(self.location).read_text().rstrip("\n")

    @classmethod
    def _validate(cls, value: Any) -> SecretRef:
        if not isinstance(value, str) or not re.fullmatch(r"(env:[A-Za-z_][A-Za-z0-9_]*|file:/.+)", value):
            raise ValueError(
                "a secret is a reference, never a value: write 'env:NAME' or 'file:/absolute/path'"
            )
        return cls(value)

    @classmethod
    def __get_pydantic_core_schema__(
        cls, source: type[Any], handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        return core_schema.no_info_plain_validator_function(
            cls._validate,
            json_schema_input_schema=core_schema.str_schema(
                pattern=r"^(env:[A-Za-z_][A-Za-z0-9_]*|file:/.+)$"
            ),
            serialization=core_schema.plain_serializer_function_ser_schema(str),
        )
