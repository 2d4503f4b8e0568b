"""Prometheus metrics, one registry per app (no import-time globals)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

_DURATION_BUCKETS = (0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 3600)
_LAG_BUCKETS = (0.01, 0.05, 0.1, 0.5, 1, 2, 5, 10, 30, 60, 300, 3600)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.runs = Counter(
            "maintd_runs",
            "Finished runs by task kind, status and how they ended",
            ["kind", "status", "state"],
            registry=self.registry,
        )
        self.run_duration = Histogram(
            "maintd_run_duration_seconds",
            "Run duration",
            ["kind"],
            buckets=_DURATION_BUCKETS,
            registry=self.registry,
        )
        self.scheduler_lag = Histogram(
            "maintd_scheduler_lag_seconds",
            "How late a run was claimed after its due time",
            buckets=_LAG_BUCKETS,
            registry=self.registry,
        )
        self.scheduler_ticks = Counter(
            "maintd_scheduler_ticks", "Scheduler loop iterations", registry=self.registry
        )
        self.runs_lost = Counter(  # [executor] maintd.executor.reaper
            "maintd_runs_lost",
            "Runs sent to Celery workers that no worker recorded (their message lost), reaped",
            registry=self.registry,
        )
        self.runs_in_flight = Gauge(
            "maintd_runs_in_flight",
            "Runs executing or waiting for a concurrency slot",
            registry=self.registry,
        )
        self.plan_reloads = Counter(
            "maintd_plan_reloads", "Plan loads by outcome", ["outcome"], registry=self.registry
        )
        self.schedules = Gauge(
            "maintd_schedules", "Active schedules (one per task and target)", registry=self.registry
        )
        self.alerts_received = Counter(
            "maintd_alerts_received",
            "Alerts received by source and outcome (rejected and rate_limited count requests)",
            ["source", "outcome"],
            registry=self.registry,
        )
        self.intake_drained = Counter(  # maintd.intake.drain
            "maintd_intake_drained",
            "Rows of maintd intake's journal stored as alerts by this process's drain",
            registry=self.registry,
        )
        self.intake_failed = Counter(
            "maintd_intake_failed",
            "Rows of maintd intake's journal that failed alone: kept with their error and skipped",
            registry=self.registry,
        )
        self.notifications_sent = Counter(
            "maintd_notifications_sent",
            "Notification delivery attempts by result (sent, retry, failed; deferred: not tried)",
            ["result"],
            registry=self.registry,
        )
        self.notification_send_seconds = Histogram(
            "maintd_notification_send_seconds",
            "Time one notification send took, failures included",
            buckets=_DURATION_BUCKETS,
            registry=self.registry,
        )
