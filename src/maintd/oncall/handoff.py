"""Handoffs (when one person takes a layer over from another) and the report handed over with them.

Handoffs come from the shifts the rotation code computes (rotations, restrictions,
overrides, in the schedule's zone), so they keep their local time across DST
changes and an override adds a handoff at each of its ends. A handoff is a
change of person: the same person on both sides of a restricted gap (off at
night, on again in the morning) is no handoff; a different person after a gap
takes over when their shift starts.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime, timedelta

from pydantic import AwareDatetime, BaseModel
from sqlalchemy import select
from sqlalchemy.orm import Session

from maintd.incidents.states import OPEN
from maintd.notify.outbox import SENT
from maintd.oncall.rotation import layer_shifts, on_call
from maintd.plan.oncall import OnCallSchedule
from maintd.store.models import IncidentRow, NotificationRow

HANDOFF = "handoff"  # the notification state and the timer kind of handoff reports
# A restricted layer can be empty for up to a week (a weekend-only layer): look that far past a shift.
_GAP = timedelta(days=8)
_INSTANT = timedelta(microseconds=1)
_PRIORITY_ORDER = {"P0": 0, "P1": 1, "P2": 2, "P3": 3}


class Handoff(BaseModel):
    """At ``at`` (UTC), ``incoming`` takes ``layer`` of ``schedule`` over from ``outgoing``."""

    schedule: str
    layer: str
    at: AwareDatetime
    outgoing: str | None  # None: nobody had the layer before (its first shift)
    incoming: str


def _horizon(schedule: OnCallSchedule) -> timedelta:
    """Far enough to see the person before (or after) any instant of the schedule."""
    return max(layer.rotation.every for layer in schedule.layers) + _GAP


def handoffs_between(schedules: Iterable[OnCallSchedule], start: datetime, end: datetime) -> list[Handoff]:
    """Every handoff at or after ``start`` and before ``end``, by time, schedule and layer order."""
    found: list[tuple[datetime, str, int, Handoff]] = []
    for schedule in schedules:
        lookback = start - _horizon(schedule)
        for order, layer in enumerate(schedule.layers):
            before: str | None = None
            for shift in layer_shifts(schedule, layer, lookback, end):
                if shift.person != before and shift.start >= start:
                    handoff = Handoff(
                        schedule=schedule.name,
                        layer=layer.name,
                        at=shift.start,
                        outgoing=before,
                        incoming=shift.person,
                    )
                    found.append((shift.start, schedule.name, order, handoff))
                before = shift.person
    return [h for *_, h in sorted(found, key=lambda item: item[:3])]


def previous_handoff(schedule: OnCallSchedule, at: datetime) -> datetime | None:
    """The latest handoff of any layer strictly before ``at``; None when there is none in reach."""
    found = handoffs_between([schedule], at - _horizon(schedule), at)
    return found[-1].at if found else None


def next_handoffs(schedule: OnCallSchedule, after: datetime) -> list[Handoff]:
    """The handoffs (every layer) at the first handoff time strictly after ``after``."""
    found = handoffs_between([schedule], after + _INSTANT, after + _horizon(schedule))
    return [h for h in found if h.at == found[0].at] if found else []


def report_window(schedule: OnCallSchedule, at: datetime) -> datetime:
    """Where a report at ``at`` starts: the previous handoff, else one rotation back."""
    return previous_handoff(schedule, at) or at - max(layer.rotation.every for layer in schedule.layers)


# -- the report ---------------------------------------------------------------------


class IncidentLine(BaseModel):
    id: int
    priority: str
    state: str
    title: str
    opened_at: AwareDatetime
    age_seconds: int  # at the report's time
    assignee: str | None


class Pages(BaseModel):
    """What one recipient was sent: how many notifications, about which incidents."""

    recipient: str
    sent: int
    incident_ids: list[int]


class Report(BaseModel):
    schedule: str
    at: AwareDatetime
    since: AwareDatetime  # the previous handoff: the shift that is handed over
    on_call: dict[str, str | None]  # per layer, from ``at``
    handoffs: list[Handoff]  # the ones at ``at``: who hands over to whom
    open_incidents: list[IncidentLine]  # open now, opened before ``at``; by priority, then age
    pages: list[Pages]  # sent in [since, at), by recipient
    opened: list[IncidentLine]  # opened in [since, at)
    resolved: list[IncidentLine]  # resolved in [since, at)

    def lines(self) -> list[str]:
        """Plain text, one fact a line: the body of the handoff notification."""
        out = [f"Handoff of {self.schedule} at {_when(self.at)}; shift since {_when(self.since)}."]
        out += [f"{h.layer}: {h.outgoing or 'nobody'} -> {h.incoming}" for h in self.handoffs]
        out.append(f"Open incidents: {len(self.open_incidents)}")
        out += [_line(i) for i in self.open_incidents]
        out.append(f"Pages sent during the shift: {sum(p.sent for p in self.pages)}")
        out += [f"  {p.recipient}: {p.sent} ({_ids(p.incident_ids)})" for p in self.pages]
        out.append(f"Opened during the shift: {len(self.opened)}; resolved: {len(self.resolved)}")
        out += [f"  resolved {_line(i).strip()}" for i in self.resolved]
        return out


def handoff_report(session: Session, *, schedule: OnCallSchedule, at: datetime, since: datetime) -> Report:
    """What the incoming person needs: what is open, who was paged, what came and went since ``since``."""
    open_rows = session.scalars(
        select(IncidentRow).where(IncidentRow.state.in_([s.value for s in OPEN]), IncidentRow.opened_at < at)
    ).all()
    opened = session.scalars(
        select(IncidentRow).where(IncidentRow.opened_at >= since, IncidentRow.opened_at < at)
    ).all()
    resolved = session.scalars(
        select(IncidentRow).where(IncidentRow.resolved_at >= since, IncidentRow.resolved_at < at)
    ).all()
    return Report(
        schedule=schedule.name,
        at=at,
        since=since,
        on_call=on_call(schedule, at),
        handoffs=[h for h in handoffs_between([schedule], at, at + _INSTANT)],
        open_incidents=[_incident(r, at) for r in sorted(open_rows, key=_urgency)],
        pages=_pages(session, since, at),
        opened=[_incident(r, at) for r in sorted(opened, key=lambda r: (r.opened_at, r.id))],
        resolved=[_incident(r, at) for r in sorted(resolved, key=lambda r: (r.opened_at, r.id))],
    )


def _pages(session: Session, since: datetime, at: datetime) -> list[Pages]:
    rows = session.execute(
        select(NotificationRow.recipient, NotificationRow.incident_id).where(
            NotificationRow.status == SENT,
            # Pages are about incidents; handoff reports and post-mortem reminders are other mail.
            NotificationRow.subject.startswith("incident:"),
            NotificationRow.sent_at >= since,
            NotificationRow.sent_at < at,
        )
    ).all()
    sent: dict[str, int] = defaultdict(int)
    incidents: dict[str, set[int]] = defaultdict(set)
    for recipient, incident_id in rows:
        sent[recipient] += 1
        if incident_id is not None:
            incidents[recipient].add(incident_id)
    return [Pages(recipient=r, sent=sent[r], incident_ids=sorted(incidents[r])) for r in sorted(sent)]


def _urgency(row: IncidentRow) -> tuple[int, datetime, int]:
    return _PRIORITY_ORDER.get(row.priority, 9), row.opened_at, row.id


def _incident(row: IncidentRow, at: datetime) -> IncidentLine:
    return IncidentLine(
        id=row.id,
        priority=row.priority,
        state=row.state,
        title=row.title,
        opened_at=row.opened_at,
        age_seconds=max(int((at - row.opened_at).total_seconds()), 0),
        assignee=row.assignee,
    )


def age(seconds: int) -> str:
    """``2d 3h``, ``3h 20m``, ``12m``: two units at most."""
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes = rest // 60
    if days:
        return f"{days}d {hours}h"
    return f"{hours}h {minutes}m" if hours else f"{minutes}m"


def _line(i: IncidentLine) -> str:
    who = f", {i.assignee}" if i.assignee else ""
    return f"  #{i.id} {i.priority} {i.state} {age(i.age_seconds)}{who}: {i.title}"


def _ids(ids: list[int]) -> str:
    return ", ".join(f"#{i}" for i in ids) if ids else "no incident"


def _when(value: datetime) -> str:
    return value.strftime("%Y-%m-%d %H:%M UTC")
