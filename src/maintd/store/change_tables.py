"""Change requests and their approvals (maintd.changes)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from maintd.store.base import Base, Json, UTCDateTime


class ChangeRow(Base):
    """A change request: what it runs (a plan procedure on targets), its approvals' outcome, its
    execution, health watch and rollback. The event log (``change:ID``) has every step."""

    __tablename__ = "changes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    type: Mapped[str] = mapped_column(String(63))
    title: Mapped[str] = mapped_column(Text)
    description: Mapped[str] = mapped_column(Text, default="")
    procedure: Mapped[str] = mapped_column(String(63))
    params: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    targets: Mapped[list[str]] = mapped_column(Json, default=list)
    canary: Mapped[list[str]] = mapped_column(Json, default=list, doc="targets applied to first")
    checks: Mapped[list[str]] = mapped_column(Json, default=list, doc="tasks watched")
    evidence: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    state: Mapped[str] = mapped_column(String(16))
    requested_by: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    approved_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    executions: Mapped[int] = mapped_column(Integer, default=0, doc="times execution was requested")
    rollbacks: Mapped[int] = mapped_column(Integer, default=0, doc="times a rollback was started")
    freeze_override: Mapped[dict[str, Any] | None] = mapped_column(Json, nullable=True)
    snapshot: Mapped[str | None] = mapped_column(Text, nullable=True, doc="the snapshot command's output")
    applied: Mapped[list[str]] = mapped_column(Json, default=list, doc="targets applied, not rolled back")
    canary_checked: Mapped[bool] = mapped_column(Boolean, default=False)
    watch_started_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    watch_until: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    errors: Mapped[int] = mapped_column(Integer, default=0, doc="unknown results in the current watch")
    outcome: Mapped[str | None] = mapped_column(Text, nullable=True, doc="why it ended as it did")
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    lease_owner: Mapped[str | None] = mapped_column(String(128), nullable=True)
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)

    __table_args__ = (Index("ix_changes_state", "state"),)


class ChangeApprovalRow(Base):
    """One person's decision on a change: approve or reject, with the role their token had."""

    __tablename__ = "change_approvals"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    change_id: Mapped[int] = mapped_column(Integer)
    person: Mapped[str] = mapped_column(String(128))
    role: Mapped[str] = mapped_column(String(16))
    decision: Mapped[str] = mapped_column(String(8), doc="approve or reject")
    note: Mapped[str] = mapped_column(Text, default="")
    at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (UniqueConstraint("change_id", "person", name="uq_change_approvals_change_id_person"),)
