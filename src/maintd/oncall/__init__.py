"""On-call schedules: people, layered rotations with restrictions and overrides, shifts, iCalendar feeds."""

from __future__ import annotations

from maintd.oncall.rotation import Shift, on_call, person_shifts, shifts
from maintd.plan.oncall import Layer, OnCallSchedule, Override, Person, Rotation

__all__ = [
    "Layer",
    "OnCallSchedule",
    "Override",
    "Person",
    "Rotation",
    "Shift",
    "on_call",
    "person_shifts",
    "shifts",
]
