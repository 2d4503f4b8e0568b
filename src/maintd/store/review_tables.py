"""Recurring reviews: one per period, its checklist and its findings (maintd.reviews)."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Boolean, Date, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from maintd.store.base import Base, UTCDateTime


class ReviewRow(Base):
    """One review of the plan's ``reviews`` for one calendar period: open until every area is reviewed
    and its owner completes it."""

    __tablename__ = "reviews"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(63), doc="the review's name in the plan")
    period: Mapped[str] = mapped_column(String(16), doc="2026-Q4, 2026-11, 2026-H2 or 2026")
    title: Mapped[str] = mapped_column(Text)
    owner: Mapped[str] = mapped_column(String(63), doc="a person of the plan")
    state: Mapped[str] = mapped_column(String(16), doc="open, complete")
    period_start: Mapped[datetime] = mapped_column(UTCDateTime)
    period_end: Mapped[datetime] = mapped_column(UTCDateTime, doc="due: complete before this instant")
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime)
    opened_by: Mapped[str] = mapped_column(String(128))
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    completed_by: Mapped[str | None] = mapped_column(String(128), nullable=True)

    __table_args__ = (
        UniqueConstraint("name", "period", name="uq_reviews_name_period"),
        Index("ix_reviews_state", "state"),
    )


class ReviewItemRow(Base):
    """One checklist line of a review: an area, pending until someone records it reviewed."""

    __tablename__ = "review_items"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    review_id: Mapped[int] = mapped_column(Integer)
    position: Mapped[int] = mapped_column(Integer, doc="the plan's order of the areas")
    area: Mapped[str] = mapped_column(String(63))
    title: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), doc="pending, reviewed")
    notes: Mapped[str] = mapped_column(Text)
    reviewed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    reviewed_by: Mapped[str | None] = mapped_column(String(128), nullable=True)

    __table_args__ = (UniqueConstraint("review_id", "area", name="uq_review_items_review_id_area"),)


class ReviewFindingRow(Base):
    """A finding of a review, and the action item it became: owner, due date, done on time or not."""

    __tablename__ = "review_findings"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    review_id: Mapped[int] = mapped_column(Integer)
    area: Mapped[str] = mapped_column(String(63))
    title: Mapped[str] = mapped_column(Text)
    detail: Mapped[str] = mapped_column(Text)
    owner: Mapped[str] = mapped_column(String(63), doc="a person of the plan")
    due_on: Mapped[date] = mapped_column(Date, doc="due by the end of this day (UTC)")
    status: Mapped[str] = mapped_column(String(16), doc="open, done, cancelled")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_by: Mapped[str] = mapped_column(String(128))
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    on_time: Mapped[bool | None] = mapped_column(Boolean, nullable=True, doc="done by the end of its due day")

    __table_args__ = (
        Index("ix_review_findings_review_id", "review_id"),
        Index("ix_review_findings_status_due_on", "status", "due_on"),
    )
