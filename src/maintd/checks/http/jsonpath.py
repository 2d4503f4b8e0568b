"""A small JSONPath subset for the http kind's ``json`` assertions (no dependency).

Supported::

    $                 the whole document
    .key              an object member (letters, digits, _ and -; not starting with a digit or -)
    ['key'] ["key"]   any member name; backslash escapes \\\\ \\' \\"
    [0] [-1]          an array element (negative counts from the end)
    [*] .*            every element of an array / every member value of an object

Not supported (rejected with a message): recursive descent ``..``, slices
``[1:3]``, unions ``[0,1]``, filters ``[?(...)]``.

``JsonPath.parse(text).find(document)`` returns the matched values, in
document order: none when a step does not apply (a key of an array, an index
out of range).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")
_INDEX = re.compile(r"-?\d+")


class JsonPathError(ValueError):
    pass


@dataclass(frozen=True)
class Key:
    name: str


@dataclass(frozen=True)
class Index:
    index: int


@dataclass(frozen=True)
class Wildcard:
    pass


Step = Key | Index | Wildcard


@dataclass(frozen=True)
class JsonPath:
    text: str
    steps: tuple[Step, ...]

    @classmethod
    def parse(cls, text: str) -> JsonPath:
        if not text.startswith("$"):
            raise JsonPathError(f"JSON path {text!r} must start with $")
        steps: list[Step] = []
        i = 1
        while i < len(text):
            if text.startswith("..", i):
                raise _unsupported(text, i, "recursive descent (..)")
            if text[i] == ".":
                if text.startswith("*", i + 1):
                    steps.append(Wildcard())
                    i += 2
                    continue
                match = _NAME.match(text, i + 1)
                if not match:
                    raise _bad(text, i + 1, "a member name after '.' (use ['...'] for other names)")
                steps.append(Key(match.group()))
                i = match.end()
            elif text[i] == "[":
                step, i = _bracket(text, i + 1)
                steps.append(step)
            else:
                raise _bad(text, i, "'.' or '['")
        return cls(text, tuple(steps))

    def find(self, document: Any) -> list[Any]:
        values = [document]
        for step in self.steps:
            found: list[Any] = []
            for value in values:
                if isinstance(step, Key):
                    if isinstance(value, dict) and step.name in value:
                        found.append(value[step.name])
                elif isinstance(step, Index):
                    if isinstance(value, list) and -len(value) <= step.index < len(value):
                        found.append(value[step.index])
                elif isinstance(value, list):
                    found += value
                elif isinstance(value, dict):
                    found += value.values()
            values = found
        return values

    def __str__(self) -> str:
        return self.text


def _bracket(text: str, i: int) -> tuple[Step, int]:
    """Parse what follows a '[' at ``i``; return the step and the index after ']'."""
    step: Step
    if text.startswith("*]", i):
        return Wildcard(), i + 2
    if i < len(text) and text[i] in "'\"":
        quote, chars = text[i], []
        j = i + 1
        while j < len(text) and text[j] != quote:
            if text[j] == "\\":
                j += 1
                if j >= len(text) or text[j] not in "\\'\"":
                    raise _bad(text, j, "\\\\, \\' or \\\" after a backslash")
            chars.append(text[j])
            j += 1
        if j >= len(text):
            raise _bad(text, i, f"a closing {quote}")
        step, i = Key("".join(chars)), j + 1
    else:
        match = _INDEX.match(text, i)
        if not match:
            if i < len(text) and text[i] in ":?,":
                raise _unsupported(text, i, "slices, filters and unions")
            raise _bad(text, i, "an index, '*' or a quoted name")
        step, i = Index(int(match.group())), match.end()
    if not text.startswith("]", i):
        if i < len(text) and text[i] in ":,":
            raise _unsupported(text, i, "slices and unions")
        raise _bad(text, i, "']'")
    return step, i + 1


def _bad(text: str, i: int, expected: str) -> JsonPathError:
    return JsonPathError(f"JSON path {text!r}: expected {expected} at position {i}")


def _unsupported(text: str, i: int, what: str) -> JsonPathError:
    return JsonPathError(f"JSON path {text!r}: {what} not supported (position {i})")
