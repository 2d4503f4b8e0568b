"""Remediation executions, breakers, circuits and the intake cursor (maintd.remediation)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, Index, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from maintd.store.base import Base, Json, UTCDateTime


class RemediationRow(Base):
    """One playbook decision about one alert, and the execution it led to (if any).

    ``state``: suppressed, awaiting_approval, denied, queued, running, succeeded, failed.
    A worker claims a queued row by a conditional update to ``running``; the unique partial
    index on ``target`` lets only one execution per target run at a time, across processes.
    """

    __tablename__ = "remediations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    playbook: Mapped[str] = mapped_column(String(63))
    action: Mapped[str] = mapped_column(String(32), doc="the action kind")
    incident_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    alert_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    target: Mapped[str] = mapped_column(String(255), doc="the target key: cooldowns, one at a time")
    state: Mapped[str] = mapped_column(String(24))
    reason: Mapped[str] = mapped_column(Text, default="", doc="why the guardrails decided so")
    dry_run: Mapped[bool] = mapped_column(Boolean, default=False)
    labels: Mapped[dict[str, Any]] = mapped_column(Json, default=dict, doc="the alert's labels")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    decided_by: Mapped[str | None] = mapped_column(String(128), nullable=True, doc="who approved or denied")
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    owner: Mapped[str | None] = mapped_column(String(128), nullable=True, doc="the process running it")
    outcome: Mapped[str | None] = mapped_column(String(16), nullable=True, doc="success or failure")
    output: Mapped[str] = mapped_column(Text, default="")
    changes: Mapped[list[dict[str, Any]]] = mapped_column(Json, default=list)
    verify_run_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    verified: Mapped[str | None] = mapped_column(String(16), nullable=True, doc="the re-run's status")

    __table_args__ = (
        Index(
            "uq_remediations_running_target",
            "target",
            unique=True,
            sqlite_where=text("state = 'running'"),
            postgresql_where=text("state = 'running'"),
        ),
        Index("ix_remediations_state", "state"),
        Index("ix_remediations_playbook_created_at", "playbook", "created_at"),
        Index("ix_remediations_target_created_at", "target", "created_at"),
        Index("ix_remediations_incident_id", "incident_id"),
    )


class RemediationBreakerRow(Base):
    """A playbook's failures in a row; ``opened_at`` set: the breaker is open, the playbook disabled."""

    __tablename__ = "remediation_breakers"

    playbook: Mapped[str] = mapped_column(String(63), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    opened_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class CircuitRow(Base):
    """A named circuit breaker the ``circuit_breaker`` action opens; the engine honours it."""

    __tablename__ = "remediation_circuits"

    name: Mapped[str] = mapped_column(String(63), primary_key=True)
    open_until: Mapped[datetime] = mapped_column(UTCDateTime)
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime)
    reason: Mapped[str] = mapped_column(Text, default="")


class RemediationCursorRow(Base):
    """How far remediation has read the event log's ``alert.firing`` events (moved by conditional update)."""

    __tablename__ = "remediation_cursor"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    last_event_id: Mapped[int] = mapped_column(Integer)
