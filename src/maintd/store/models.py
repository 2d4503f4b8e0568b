"""Database tables. All engine state lives here, none in process memory, so
several maintd processes can share one PostgreSQL. The rooms' own tables are in modules of
their own (post-mortems, remediation, changes, reviews, the alert intake's journal), imported
here so that ``Base.metadata`` holds every table and ``from maintd.store.models import X`` finds each."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    Float,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from maintd.store.base import NAMING, Base, Json, UTCDateTime
from maintd.store.change_tables import ChangeApprovalRow, ChangeRow
from maintd.store.intake_tables import AlertIntakeRow
from maintd.store.postmortem_tables import PostmortemActionRow, PostmortemRow
from maintd.store.remediation_tables import (
    CircuitRow,
    RemediationBreakerRow,
    RemediationCursorRow,
    RemediationRow,
)
from maintd.store.review_tables import ReviewFindingRow, ReviewItemRow, ReviewRow


class ScheduleRow(Base):
    """One task on one target: when it is next due and whether it is running.

    ``due_at`` is the only column the scheduler loop searches (indexed): the
    earlier of the next regular time and a pending retry.
    """

    __tablename__ = "schedules"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    task: Mapped[str] = mapped_column(String(63))
    target: Mapped[str] = mapped_column(String(63))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    spec: Mapped[str] = mapped_column(String(64), doc="digest of the schedule; a change recomputes times")
    due_at: Mapped[datetime] = mapped_column(UTCDateTime)
    next_regular: Mapped[datetime] = mapped_column(UTCDateTime)
    window_end: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    retry_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    retry_attempt: Mapped[int] = mapped_column(Integer, default=0)
    retry_trigger: Mapped[str | None] = mapped_column(String(16), nullable=True, doc="retry or recovery")
    running_run_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    last_run_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    last_status: Mapped[str | None] = mapped_column(String(16), nullable=True)
    last_finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    fail_streak: Mapped[int] = mapped_column(Integer, default=0, doc="non-ok runs in a row, for alerting")
    memo: Mapped[dict[str, Any] | None] = mapped_column(
        Json, nullable=True, doc="what the kind carries from one run to the next (offsets, findings seen)"
    )

    __table_args__ = (
        Index("uq_schedules_task_target", "task", "target", unique=True),
        # Only idle rows are looked up by time (the tick's MIN, the claim): the index leaves running
        # ones out. SQLite uses a partial index only when the query repeats its terms as written.
        Index(
            "ix_schedules_idle_due_at",
            "due_at",
            sqlite_where=text("active = 1 AND running_run_id IS NULL"),
            postgresql_where=text("active AND running_run_id IS NULL"),
        ),
    )


class RunRow(Base):
    __tablename__ = "runs"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    task: Mapped[str] = mapped_column(String(63))
    target: Mapped[str] = mapped_column(String(63))
    kind: Mapped[str] = mapped_column(String(63))
    trigger: Mapped[str] = mapped_column(String(16), doc="schedule, retry, misfire, manual, recovery")
    attempt: Mapped[int] = mapped_column(Integer, default=1)
    scheduled_for: Mapped[datetime] = mapped_column(UTCDateTime)
    window_end: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    state: Mapped[str] = mapped_column(String(16), doc="running, finished, interrupted")
    status: Mapped[str | None] = mapped_column(String(16), nullable=True)
    stop_reason: Mapped[str | None] = mapped_column(String(16), nullable=True)
    in_window: Mapped[bool] = mapped_column(Boolean, default=True)
    dry_run: Mapped[bool] = mapped_column(Boolean, default=False)
    preventive: Mapped[bool] = mapped_column(Boolean, default=True)
    output: Mapped[str] = mapped_column(Text, default="")
    metrics: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    duration_ms: Mapped[float | None] = mapped_column(Float, nullable=True)
    owner: Mapped[str] = mapped_column(String(64), doc="the process instance that ran it")

    __table_args__ = (
        Index("ix_runs_task_target_started_at", "task", "target", "started_at"),
        Index("ix_runs_started_at", "started_at"),
        Index("ix_runs_state", "state"),
    )


class EventRow(Base):
    """Append-only: never updated, never deleted by the engine."""

    __tablename__ = "events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    kind: Mapped[str] = mapped_column(String(64))
    subject: Mapped[str] = mapped_column(String(255))
    actor: Mapped[str] = mapped_column(String(128))
    payload: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)

    __table_args__ = (
        Index("ix_events_at", "at"),
        Index("ix_events_kind", "kind"),
        Index("ix_events_subject", "subject"),
    )


class PlanVersionRow(Base):
    __tablename__ = "plan_versions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    loaded_at: Mapped[datetime] = mapped_column(UTCDateTime)
    digest: Mapped[str] = mapped_column(String(64))
    source: Mapped[str] = mapped_column(Text)
    document: Mapped[dict[str, Any]] = mapped_column(Json)


class TokenRow(Base):
    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(63), unique=True)
    role: Mapped[str] = mapped_column(String(16))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class HeartbeatRow(Base):
    """Liveness of long-running loops (``scheduler``), read by /readyz."""

    __tablename__ = "heartbeats"

    component: Mapped[str] = mapped_column(String(63), primary_key=True)
    instance: Mapped[str] = mapped_column(String(64))
    beat_at: Mapped[datetime] = mapped_column(UTCDateTime)


class IntegrationRow(Base):
    """Where alerts come in from: a name, a format, and a key senders put in the URL or body."""

    __tablename__ = "integrations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(63), unique=True)
    kind: Mapped[str] = mapped_column(String(16), doc="native, alertmanager, pagerduty")
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    disabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class AlertRow(Base):
    """One alert: identified by its label fingerprint (or a PagerDuty dedup_key) while it fires."""

    __tablename__ = "alerts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(16))
    dedup_key: Mapped[str] = mapped_column(
        String(255), doc="identity while open: fingerprint or PagerDuty's key"
    )
    source: Mapped[str] = mapped_column(String(16), doc="run, native, alertmanager, pagerduty")
    integration: Mapped[str | None] = mapped_column(String(63), nullable=True)
    status: Mapped[str] = mapped_column(String(16), doc="firing or resolved")
    severity: Mapped[str] = mapped_column(String(16))
    priority: Mapped[str] = mapped_column(String(2))
    summary: Mapped[str] = mapped_column(Text)
    labels: Mapped[dict[str, Any]] = mapped_column(Json)
    annotations: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ends_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    last_received_at: Mapped[datetime] = mapped_column(UTCDateTime)
    received: Mapped[int] = mapped_column(Integer, default=1, doc="deliveries, duplicates included")
    acknowledged_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    muted_by: Mapped[str | None] = mapped_column(
        String(128), nullable=True, doc="silence:ID, window:..., inhibited"
    )
    incident_id: Mapped[int | None] = mapped_column(Integer, nullable=True)

    __table_args__ = (
        Index("ix_alerts_dedup_key_status", "dedup_key", "status"),
        Index("ix_alerts_incident_id", "incident_id"),
        Index("ix_alerts_status_starts_at", "status", "starts_at"),
    )


class IncidentRow(Base):
    __tablename__ = "incidents"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    title: Mapped[str] = mapped_column(Text)
    priority: Mapped[str] = mapped_column(String(2))
    state: Mapped[str] = mapped_column(String(16))
    group_key: Mapped[str] = mapped_column(String(255))
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ack_deadline: Mapped[datetime] = mapped_column(UTCDateTime)
    acknowledged_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    mitigated_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    breached_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    assignee: Mapped[str | None] = mapped_column(String(128), nullable=True)
    postmortem_required: Mapped[bool] = mapped_column(Boolean, default=False)
    labels: Mapped[dict[str, Any]] = mapped_column(Json, default=dict, doc="the group_by labels")
    escalation_policy: Mapped[str | None] = mapped_column(String(63), nullable=True)
    escalation: Mapped[dict[str, Any] | None] = mapped_column(
        Json, nullable=True, doc="the policy as it was when the incident opened"
    )

    __table_args__ = (
        Index("ix_incidents_group_key_state", "group_key", "state"),
        Index("ix_incidents_state_ack_deadline", "state", "ack_deadline"),
        Index("ix_incidents_opened_at", "opened_at"),
    )


class SilenceRow(Base):
    __tablename__ = "silences"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    matchers: Mapped[list[dict[str, str]]] = mapped_column(Json)
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_by: Mapped[str] = mapped_column(String(128))
    comment: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (Index("ix_silences_ends_at", "ends_at"),)


class TimerRow(Base):
    """Something due at a time: an escalation step, a handoff report.

    Fired exactly once: the firing process sets ``fired_at`` with a conditional update
    (``... WHERE id = :id AND fired_at IS NULL AND cancelled_at IS NULL``) and goes on
    only when one row changed. Creating one is idempotent through the unique key.
    """

    __tablename__ = "timers"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), doc="escalate, handoff")
    subject: Mapped[str] = mapped_column(String(128), doc="incident:ID, schedule:NAME")
    step: Mapped[str] = mapped_column(String(64), doc="what of the subject: c0.l1 (cycle, level), a time")
    due_at: Mapped[datetime] = mapped_column(UTCDateTime)
    payload: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    fired_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    fired_by: Mapped[str | None] = mapped_column(String(128), nullable=True)
    cancelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)

    __table_args__ = (
        UniqueConstraint("kind", "subject", "step", name="uq_timers_kind_subject_step"),
        # Only pending timers are looked up by time: the index stays as small as the backlog.
        Index(
            "ix_timers_pending_due_at",
            "due_at",
            sqlite_where=text("fired_at IS NULL AND cancelled_at IS NULL"),
            postgresql_where=text("fired_at IS NULL AND cancelled_at IS NULL"),
        ),
        Index("ix_timers_subject", "subject"),
    )


class NotificationRow(Base):
    """The notification log: one row per (subject, recipient, state, step), so nothing pages twice.

    ``channels`` is the recipient's rules as they were when queued (URLs or secret
    references, never resolved secrets); ``channel`` is the one in use. A sender claims a
    due row by moving ``lease_until`` forward with a conditional update.
    """

    __tablename__ = "notifications"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    subject: Mapped[str] = mapped_column(String(128), doc="incident:ID, schedule:NAME")
    incident_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    recipient: Mapped[str] = mapped_column(String(128), doc="person:NAME or channel:NAME")
    state: Mapped[str] = mapped_column(String(16), doc="triggered, acknowledged, resolved, handoff, ...")
    step: Mapped[str] = mapped_column(String(64), doc="which page of the state: the escalation step")
    status: Mapped[str] = mapped_column(String(16), doc="pending, sent, failed, cancelled")
    channels: Mapped[list[dict[str, Any]]] = mapped_column(Json, doc="[{url, after}] in order")
    channel: Mapped[int] = mapped_column(Integer, default=0, doc="index of the channel in use")
    message: Mapped[dict[str, Any]] = mapped_column(Json, doc="title, body, links")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    due_at: Mapped[datetime] = mapped_column(UTCDateTime)
    attempts: Mapped[int] = mapped_column(Integer, default=0, doc="attempts on the current channel")
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)

    __table_args__ = (
        UniqueConstraint("subject", "recipient", "state", "step", name="uq_notifications_key"),
        Index(
            "ix_notifications_pending_due_at",
            "due_at",
            sqlite_where=text("status = 'pending'"),
            postgresql_where=text("status = 'pending'"),
        ),
        Index("ix_notifications_incident_id", "incident_id"),
    )


class NotificationAttemptRow(Base):
    """Every delivery attempt: which channel (secrets redacted), when, how it went."""

    __tablename__ = "notification_attempts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    notification_id: Mapped[int] = mapped_column(Integer)
    channel: Mapped[int] = mapped_column(Integer)
    target: Mapped[str] = mapped_column(String(255), doc="the URL with credentials redacted")
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    duration_ms: Mapped[float] = mapped_column(Float)
    ok: Mapped[bool] = mapped_column(Boolean)
    permanent: Mapped[bool] = mapped_column(Boolean, default=False)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)

    __table_args__ = (Index("ix_notification_attempts_notification_id", "notification_id"),)


class SigningKeyRow(Base):
    """Keys for signed links (acknowledge from a page, calendar feeds); the newest signs, all verify."""

    __tablename__ = "signing_keys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    secret: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


# -- the scheduler lease (maintd.lease) -----------------------------------------------------------


class LeaseRow(Base):
    """Who runs the scheduler: one row per lease, written only with maintd.lease's SQL, which
    uses the database's clock for ``expires_at`` and the holder's backend pid to see it die."""

    __tablename__ = "maintd_leases"

    name: Mapped[str] = mapped_column(Text, primary_key=True)
    holder: Mapped[str] = mapped_column(Text)
    epoch: Mapped[int] = mapped_column(BigInteger, doc="the fencing token: +1 at every takeover")
    holder_pid: Mapped[int] = mapped_column(Integer, doc="the holder's lease connection's backend")
    acquired_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


__all__ = [
    "NAMING",
    "AlertIntakeRow",
    "AlertRow",
    "Base",
    "ChangeApprovalRow",
    "ChangeRow",
    "CircuitRow",
    "EventRow",
    "HeartbeatRow",
    "IncidentRow",
    "IntegrationRow",
    "Json",
    "LeaseRow",
    "NotificationAttemptRow",
    "NotificationRow",
    "PlanVersionRow",
    "PostmortemActionRow",
    "PostmortemRow",
    "RemediationBreakerRow",
    "RemediationCursorRow",
    "RemediationRow",
    "ReviewFindingRow",
    "ReviewItemRow",
    "ReviewRow",
    "RunRow",
    "ScheduleRow",
    "SigningKeyRow",
    "SilenceRow",
    "TimerRow",
    "TokenRow",
    "UTCDateTime",
]
