"""The http kind's ``json`` assertions: a JSONPath subset, and what the matched values must be."""

from __future__ import annotations

import json
from typing import Any

from pydantic import Field, JsonValue, field_validator, model_validator

from maintd.checks.http.jsonpath import JsonPath
from maintd.plan.base import StrictModel

_SHOWN = 80  # characters of a value quoted in a failure


class JsonAssertion(StrictModel):
    """One of: ``equals``, ``contains``, ``exists``, or ``min`` and/or ``max``."""

    path: str = Field(description="JSONPath subset: $, .key, ['key'], [index], [*]")
    equals: JsonValue = Field(default=None, description="every matched value equals this JSON value")
    contains: str | None = Field(
        default=None, description="every matched string contains this text (an array: has it as an element)"
    )
    exists: bool | None = Field(default=None, description="true: the path matches; false: it matches nothing")
    min: float | None = Field(default=None, description="every matched value is a number ≥ this")
    max: float | None = Field(default=None, description="every matched value is a number ≤ this")

    @field_validator("path")
    @classmethod
    def _valid_path(cls, value: str) -> str:
        JsonPath.parse(value)
        return value

    @model_validator(mode="after")
    def _one_test(self) -> JsonAssertion:
        given = self.model_fields_set
        tests: list[str] = [name for name in ("equals", "contains", "exists") if name in given]
        if given & {"min", "max"}:
            tests.append("min/max")
        if len(tests) != 1:
            raise ValueError(
                f"a json assertion on {self.path} needs exactly one of equals, contains, exists, "
                f"min/max (got {', '.join(tests) or 'none'})"
            )
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"json assertion on {self.path}: min {self.min:g} is above max {self.max:g}")
        return self

    def failure(self, document: Any) -> str | None:
        """Why the assertion fails on ``document``, or None when it holds."""
        path = JsonPath.parse(self.path)
        found = path.find(document)
        given = self.model_fields_set
        if "exists" in given:
            if self.exists and not found:
                return f"{path} matches nothing"
            if not self.exists and found:
                return f"{path} exists: {_show(found[0])}"
            return None
        if not found:
            return f"{path} matches nothing"
        for value in found:
            problem = self._check(value)
            if problem is not None:
                where = f" (one of {len(found)} matches)" if len(found) > 1 else ""
                return f"{path}{where} {problem}"
        return None

    def _check(self, value: Any) -> str | None:
        given = self.model_fields_set
        if "equals" in given:
            return (
                None
                if json_equal(value, self.equals)
                else f"is {_show(value)}, expected {_show(self.equals)}"
            )
        if "contains" in given:
            assert self.contains is not None
            if isinstance(value, str):
                return None if self.contains in value else f"is {_show(value)}, lacking {self.contains!r}"
            if isinstance(value, list):
                if any(json_equal(item, self.contains) for item in value):
                    return None
                return f"is {_show(value)}, without the element {_show(self.contains)}"
            return f"is {_show(value)}, not a string or an array"
        if not is_number(value):
            return f"is {_show(value)}, not a number"
        if self.min is not None and value < self.min:
            return f"is {value:g}, below the minimum {self.min:g}"
        if self.max is not None and value > self.max:
            return f"is {value:g}, above the maximum {self.max:g}"
        return None

    def metric(self, document: Any) -> float | None:
        """The value of a min/max assertion whose path matches exactly one number."""
        if not self.model_fields_set & {"min", "max"}:
            return None
        found = JsonPath.parse(self.path).find(document)
        if len(found) == 1 and is_number(found[0]):
            return float(found[0])
        return None


def is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def json_equal(a: Any, b: Any) -> bool:
    """Equality of JSON values: 1 == 1.0, but true is not 1 and "1" is not 1."""
    if is_number(a) and is_number(b):
        return bool(a == b)
    if type(a) is not type(b):
        return False
    if isinstance(a, list):
        return len(a) == len(b) and all(json_equal(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(json_equal(a[k], b[k]) for k in a)
    return bool(a == b)


def parse_json(body: bytes) -> tuple[Any, str | None]:
    """The document in ``body``, or the reason it is not JSON."""
    try:
        return json.loads(body), None
    except UnicodeDecodeError as exc:
        return None, f"not UTF-8 at byte {exc.start}"
    except json.JSONDecodeError as exc:
        return None, exc.msg + f" at line {exc.lineno} column {exc.colno}"
    except RecursionError:
        return None, "nested too deeply"
    except ValueError as exc:  # e.g. an integer longer than Python's digit limit
        return None, str(exc).split("\n", 1)[0]


def _show(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= _SHOWN else text[:_SHOWN] + "…"
