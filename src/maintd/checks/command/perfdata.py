"""Nagios plugin output: ``TEXT|label=value[UOM];warn;crit;min;max ...``.

Reference: https://nagios-plugins.org/doc/guidelines.html#AEN200 — perfdata may
also follow a ``|`` on a later line of long output; labels with spaces are
single-quoted, a quote inside doubled.
"""

from __future__ import annotations

import re

_VALUE = re.compile(r"^(-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)([a-zA-Z%]*)$")
_ITEM = re.compile(r"('(?:[^']|'')+'|[^'=\s]+)=(\S+)")


def split_output(text: str) -> tuple[str, dict[str, float]]:
    """Return the human text (perfdata removed) and the metrics by label."""
    lines = text.splitlines()
    human: list[str] = []
    metrics: dict[str, float] = {}
    in_perf = False
    for i, line in enumerate(lines):
        if in_perf:
            metrics.update(parse_perfdata(line))
            continue
        head, sep, perf = line.partition("|")
        human.append(head.rstrip())
        if sep:
            metrics.update(parse_perfdata(perf))
            in_perf = i > 0  # after a '|' in long output, the rest is perfdata
    return "\n".join(human).strip(), metrics


def parse_perfdata(perf: str) -> dict[str, float]:
    metrics: dict[str, float] = {}
    for label, rest in _ITEM.findall(perf):
        if label.startswith("'"):
            label = label[1:-1].replace("''", "'")
        match = _VALUE.match(rest.split(";", 1)[0])
        if match:
            metrics[label] = float(match.group(1))
    return metrics
