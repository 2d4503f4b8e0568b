"""Shifts as an iCalendar feed (RFC 5545), written by hand: CRLF lines folded at 75 octets."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from datetime import UTC, datetime

from maintd import __version__
from maintd.oncall.rotation import Shift

LINE_OCTETS = 75


def escape(text: str) -> str:
    """TEXT value escaping (RFC 5545 3.3.11): backslash, ';', ',' and newlines."""
    return (
        text.replace("\\", "\\\\")
        .replace(";", "\\;")
        .replace(",", "\\,")
        .replace("\r\n", "\\n")
        .replace("\n", "\\n")
        .replace("\r", "\\n")
    )


def fold(line: str) -> str:
    """Split ``line`` into CRLF-joined pieces of at most 75 octets, never inside a UTF-8 character;
    each continuation starts with one space (which counts toward its 75)."""
    pieces: list[str] = []
    current, size, limit = "", 0, LINE_OCTETS
    for char in line:
        octets = len(char.encode())
        if size + octets > limit:
            pieces.append(current)
            current, size, limit = "", 0, LINE_OCTETS - 1
        current += char
        size += octets
    pieces.append(current)
    return "\r\n ".join(pieces)


def _stamp(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def _uid(shift: Shift) -> str:
    key = f"{shift.schedule}\0{shift.layer}\0{shift.person}\0{_stamp(shift.start)}"
    return hashlib.sha256(key.encode()).hexdigest()[:32] + "@maintd"


def calendar(name: str, shifts: Iterable[Shift], now: datetime) -> str:
    """A VCALENDAR with one VEVENT per shift; ``now`` is every event's DTSTAMP."""
    lines = [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        f"PRODID:-//maintd//maintd {__version__}//EN",
        "CALSCALE:GREGORIAN",
        "METHOD:PUBLISH",
        f"X-WR-CALNAME:{escape(name)}",
    ]
    for shift in shifts:
        lines += [
            "BEGIN:VEVENT",
            f"UID:{_uid(shift)}",
            f"DTSTAMP:{_stamp(now)}",
            f"DTSTART:{_stamp(shift.start)}",
            f"DTEND:{_stamp(shift.end)}",
            f"SUMMARY:{escape(f'on call: {shift.schedule} {shift.layer}')}",
            f"DESCRIPTION:{escape(f'{shift.person} is on call for {shift.schedule}, layer {shift.layer}')}",
            "TRANSP:TRANSPARENT",
            "END:VEVENT",
        ]
    lines.append("END:VCALENDAR")
    return "".join(fold(line) + "\r\n" for line in lines)
