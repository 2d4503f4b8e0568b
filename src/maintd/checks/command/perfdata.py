"""Nagios plugin output: summary, long output, performance data and threshold ranges.

Reference: https://nagios-plugins.org/doc/guidelines.html ("Plugin Output",
"Performance data", "Threshold and ranges").

* The first line is the summary; further lines are long output.
* Performance data follows a ``|`` on the first line, and a ``|`` on a later
  line of long output: from there on, every remaining line is perfdata.
* Each item is ``'label'=value[UOM];[warn];[crit];[min];[max]``: labels with
  spaces are single-quoted, a quote inside doubled; ``U`` is an unknown value;
  warn and crit are ranges, min and max plain numbers, all in the value's UOM.

Garbage never raises: an item that does not parse is left out and described in
``PluginOutput.garbage``.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

_NUMBER = r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?"
_NUMBER_RE = re.compile(rf"^{_NUMBER}$")
_VALUE_RE = re.compile(rf"^({_NUMBER})([^\d\s;=]*)$")
_UOM_RE = re.compile(r"^(?:[A-Za-zµ%/]+)?$")

# Unit → factor to the base unit (seconds, bytes). SI prefixes are powers of 1000, IEC (KiB) of
# 1024, as Icinga normalises them. Other units (%, c, anything else) are kept as printed.
UNIT_FACTORS: dict[str, float] = {
    "s": 1.0,
    "ms": 1e-3,
    "us": 1e-6,
    "µs": 1e-6,
    "ns": 1e-9,
    "B": 1.0,
    "KB": 1e3,
    "kB": 1e3,
    "MB": 1e6,
    "GB": 1e9,
    "TB": 1e12,
    "PB": 1e15,
    "KiB": 2.0**10,
    "MiB": 2.0**20,
    "GiB": 2.0**30,
    "TiB": 2.0**40,
    "PiB": 2.0**50,
}

_GARBAGE_SHOWN = 60  # characters of an ignored item quoted in its note


class PerfdataError(ValueError):
    """A performance data item that does not follow the guidelines."""


class RangeError(PerfdataError):
    """A threshold range that does not follow the guidelines' syntax."""


def _number(text: str) -> float:
    if not _NUMBER_RE.match(text):
        raise RangeError(f"{text!r} is not a number")
    return float(text)


@dataclass(frozen=True)
class Range:
    """A threshold range: ``10``, ``10:``, ``~:10``, ``10:20``, ``@10:20``.

    Without ``@`` a value alerts when it lies *outside* ``start..end`` (both ends
    inclusive); with ``@`` when it lies *inside*. ``~`` is negative infinity, an
    empty end positive infinity, an empty start 0.
    """

    start: float = 0.0
    end: float = math.inf
    inside: bool = False
    text: str = ""

    @classmethod
    def parse(cls, text: str) -> Range:
        body = text.strip()
        inside = body.startswith("@")
        if inside:
            body = body[1:]
        if not body:
            raise RangeError(f"empty range {text!r}")
        if ":" in body:
            low, _, high = body.partition(":")
            start = -math.inf if low == "~" else (_number(low) if low else 0.0)
            end = _number(high) if high else math.inf
        else:
            start, end = 0.0, _number(body)
        if start > end:
            raise RangeError(f"range {text!r} starts above its end")
        return cls(start, end, inside, text.strip())

    def alerts(self, value: float) -> bool:
        """True when ``value`` is beyond this threshold (per the guidelines)."""
        within = self.start <= value <= self.end
        return within if self.inside else not within

    @property
    def bound(self) -> float | None:
        """The number of a plain ``N`` range (alert above N), else None."""
        if self.inside or self.start != 0.0 or ":" in self.text:
            return None
        return self.end

    def __str__(self) -> str:
        return self.text


@dataclass(frozen=True)
class PerfValue:
    """One performance data item, in the unit the plugin printed."""

    label: str
    value: float | None  # None: the plugin printed U (value unknown)
    uom: str = ""
    warn: Range | None = None
    crit: Range | None = None
    min: float | None = None
    max: float | None = None
    printed: str = ""  # the value as the plugin printed it, with its UOM

    @property
    def factor(self) -> float:
        """Multiplier to the base unit (seconds, bytes); 1 for %, c and unknown units."""
        return UNIT_FACTORS.get(self.uom, 1.0)

    def base(self, number: float) -> float:
        """``number`` (in this item's UOM) in the base unit."""
        factor = self.factor
        if factor == 1.0:
            return number
        if factor < 1.0:  # divide: 4.5 ms → 0.0045 exactly, not 0.0045000000000000005
            return number / round(1 / factor)
        return number * factor

    def beyond(self) -> tuple[str, Range] | None:
        """``("critical", range)`` or ``("warning", range)`` when the value alerts, else None."""
        if self.value is None:
            return None
        if self.crit is not None and self.crit.alerts(self.value):
            return "critical", self.crit
        if self.warn is not None and self.warn.alerts(self.value):
            return "warning", self.warn
        return None

    @property
    def shown(self) -> str:
        """``label=value[UOM]`` for notes (label quoted when it needs it)."""
        label = self.label
        if not re.fullmatch(r"[^\s'=]+", label):
            label = "'" + label.replace("'", "''") + "'"
        return f"{label}={self.printed or ('U' if self.value is None else f'{self.value:g}{self.uom}')}"


@dataclass
class PluginOutput:
    summary: str
    long_text: str = ""
    perfdata: list[PerfValue] = field(default_factory=list)
    garbage: list[str] = field(default_factory=list)  # one note per ignored item

    @property
    def text(self) -> str:
        """The human text: summary and long output, perfdata removed."""
        return f"{self.summary}\n{self.long_text}" if self.long_text else self.summary

    def raw_metrics(self) -> dict[str, float]:
        """``{label: value}`` as printed (no unit conversion); unknown values left out."""
        return {p.label: p.value for p in self.perfdata if p.value is not None}

    def metrics(self) -> dict[str, float]:
        """Values in base units, plus ``label.warn`` / ``label.crit`` (plain ``N`` thresholds)
        and ``label.min`` / ``label.max``, converted alike."""
        metrics: dict[str, float] = {}
        for p in self.perfdata:
            if p.value is None:
                continue
            metrics[p.label] = p.base(p.value)
            for suffix, number in (
                ("warn", p.warn.bound if p.warn else None),
                ("crit", p.crit.bound if p.crit else None),
                ("min", p.min),
                ("max", p.max),
            ):
                if number is not None:
                    metrics[f"{p.label}.{suffix}"] = p.base(number)
        return metrics

    def notes(self, limit: int = 10) -> list[str]:
        """Lines for the run output: values beyond their thresholds, then ignored garbage."""
        notes = []
        for p in self.perfdata:
            hit = p.beyond()
            if hit is not None:
                notes.append(f"perfdata: {p.shown} is beyond its {hit[0]} range {hit[1]}")
        notes += [f"perfdata: {g}" for g in self.garbage]
        if len(notes) > limit:
            notes = [*notes[:limit], f"perfdata: {len(notes) - limit} more notes left out"]
        return notes


def parse_output(text: str) -> PluginOutput:
    """Split plugin output into summary, long output and parsed performance data."""
    lines = text.splitlines()
    human: list[str] = []
    perf: list[PerfValue] = []
    garbage: list[str] = []
    in_perf = False
    for i, line in enumerate(lines):
        if not in_perf:
            head, sep, line = line.partition("|")
            human.append(head.rstrip())
            if not sep:
                continue
            in_perf = i > 0  # after a '|' in long output, the rest is perfdata
        values, bad = parse_items(line)
        perf += values
        garbage += bad
    summary, _, long_text = "\n".join(human).strip().partition("\n")
    return PluginOutput(summary, long_text, perf, garbage)


def parse_items(perf: str) -> tuple[list[PerfValue], list[str]]:
    """Parse one line of performance data: the items, and a note for each ignored one."""
    values: list[PerfValue] = []
    garbage: list[str] = []
    i, n = 0, len(perf)
    while i < n:
        if perf[i].isspace():
            i += 1
            continue
        start = i
        if perf[i] == "'":
            label, i = _quoted_label(perf, i)
            if label is None:  # unclosed: only this word is garbage
                i = start
                while i < n and not perf[i].isspace():
                    i += 1
        else:
            while i < n and not perf[i].isspace() and perf[i] != "=":
                i += 1
            label = perf[start:i]
        if label is None or i >= n or perf[i] != "=" or not label:
            while i < n and not perf[i].isspace():
                i += 1
            reason = "no label" if label == "" else "not label=value"
            garbage.append(_ignored(perf[start:i], reason))
            continue
        end = i + 1
        while end < n and not perf[end].isspace():
            end += 1
        data, i = perf[i + 1 : end], end
        try:
            item, notes = _item(label, data)
        except PerfdataError as exc:
            garbage.append(_ignored(perf[start:end], str(exc)))
            continue
        values.append(item)
        garbage += [_ignored(perf[start:end], note, "in") for note in notes]
    return values, garbage


def _quoted_label(perf: str, i: int) -> tuple[str | None, int]:
    """The label of ``'...'`` at ``i`` ('' inside is a quote) and the index after it; None when unclosed."""
    chars: list[str] = []
    i += 1
    while i < len(perf):
        if perf[i] == "'":
            if perf.startswith("''", i):
                chars.append("'")
                i += 2
                continue
            return "".join(chars), i + 1
        chars.append(perf[i])
        i += 1
    return None, i


def _item(label: str, data: str) -> tuple[PerfValue, list[str]]:
    """Parse ``value[UOM];warn;crit;min;max``.

    A bad value raises PerfdataError; a bad threshold, min or max is dropped with a note.
    """
    fields = data.split(";")
    if len(fields) > 5 and any(fields[5:]):
        raise PerfdataError("more than value;warn;crit;min;max")
    fields += [""] * (5 - len(fields))
    raw_value, warn, crit, low, high = fields[:5]
    if raw_value == "U":
        value, uom = None, ""
    else:
        match = _VALUE_RE.match(raw_value)
        if not match:
            raise PerfdataError("no value" if not raw_value else f"value {raw_value!r} is not a number")
        value, uom = float(match.group(1)), match.group(2)
        if not _UOM_RE.match(uom):
            raise PerfdataError(f"unit {uom!r} is not a unit of measurement")
    notes: list[str] = []
    ranges: list[Range | None] = []
    for name, text in (("warn", warn), ("crit", crit)):
        try:
            ranges.append(Range.parse(text) if text.strip() else None)
        except RangeError as exc:
            notes.append(f"{name} threshold dropped: {exc}")
            ranges.append(None)
    bounds: list[float | None] = []
    for name, text in (("min", low), ("max", high)):
        try:
            bounds.append(_number(text.strip()) if text.strip() else None)
        except RangeError as exc:
            notes.append(f"{name} dropped: {exc}")
            bounds.append(None)
    item = PerfValue(label, value, uom, ranges[0], ranges[1], bounds[0], bounds[1], raw_value)
    return item, notes


def _ignored(item: str, reason: str, verb: str = "ignored") -> str:
    shown = item if len(item) <= _GARBAGE_SHOWN else item[:_GARBAGE_SHOWN] + "…"
    return f"{verb} {shown!r}: {reason}"


# The command kind's original interface: human text and {label: value as printed}.


def split_output(text: str) -> tuple[str, dict[str, float]]:
    """Return the human text (perfdata removed) and the metrics by label, values as printed."""
    parsed = parse_output(text)
    return parsed.text, parsed.raw_metrics()


def parse_perfdata(perf: str) -> dict[str, float]:
    """``{label: value as printed}`` of one perfdata line; garbage and unknown values left out."""
    values, _garbage = parse_items(perf)
    return {p.label: p.value for p in values if p.value is not None}
