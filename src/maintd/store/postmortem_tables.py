"""Post-mortems and their action items (maintd.postmortems)."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Boolean, Date, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from maintd.store.base import Base, UTCDateTime


class PostmortemRow(Base):
    """An incident's blameless post-mortem: the seed's template, one column per section.

    Drafted when a P0/P1 incident resolves, pre-filled from its timeline and alerts.
    """

    __tablename__ = "postmortems"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    incident_id: Mapped[int] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(16), doc="draft, in_review, complete")
    title: Mapped[str] = mapped_column(Text)
    severity: Mapped[str] = mapped_column(String(64))
    impact: Mapped[str] = mapped_column(Text, default="")
    summary: Mapped[str] = mapped_column(Text, default="")
    alert_triggered_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    response_begun_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    root_cause_identified_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    fix_implemented_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    what_happened: Mapped[str] = mapped_column(Text, default="")
    why_it_happened: Mapped[str] = mapped_column(Text, default="")
    contributing_factors: Mapped[str] = mapped_column(Text, default="")
    lessons_learned: Mapped[str] = mapped_column(Text, default="")
    what_went_well: Mapped[str] = mapped_column(Text, default="")
    what_could_be_improved: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    completed_by: Mapped[str | None] = mapped_column(String(128), nullable=True)

    __table_args__ = (UniqueConstraint("incident_id", name="uq_postmortems_incident_id"),)


class PostmortemActionRow(Base):
    """An action item of a post-mortem: who does what by when; reminded on timers until done."""

    __tablename__ = "postmortem_actions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    incident_id: Mapped[int] = mapped_column(Integer)
    title: Mapped[str] = mapped_column(Text)
    owner: Mapped[str] = mapped_column(String(63), doc="a person of the plan")
    due_on: Mapped[date] = mapped_column(Date, doc="due by the end of this day (UTC)")
    status: Mapped[str] = mapped_column(String(16), doc="open, done, cancelled")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_by: Mapped[str] = mapped_column(String(128))
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    on_time: Mapped[bool | None] = mapped_column(Boolean, nullable=True, doc="done by the end of its due day")

    __table_args__ = (
        Index("ix_postmortem_actions_incident_id", "incident_id"),
        Index("ix_postmortem_actions_status_due_on", "status", "due_on"),
    )
