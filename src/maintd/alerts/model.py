"""The one shape every alert takes inside maintd, whatever sent it."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from functools import cached_property

from pydantic import BaseModel, ConfigDict, Field

from maintd.alerts.fingerprint import fingerprint


class AlertStatus(StrEnum):
    firing = "firing"
    resolved = "resolved"


class Severity(StrEnum):
    """PagerDuty's four, which the other sources map onto."""

    critical = "critical"
    error = "error"
    warning = "warning"
    info = "info"


class AlertIn(BaseModel):
    """A normalised alert delivery: what the pipeline stages work on."""

    model_config = ConfigDict(frozen=True)

    source: str  # run, native, alertmanager, pagerduty
    integration: str | None = None
    labels: dict[str, str]
    annotations: dict[str, str] = Field(default_factory=dict)
    status: AlertStatus = AlertStatus.firing
    severity: Severity = Severity.error
    summary: str = ""
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    dedup_key: str | None = None  # PagerDuty; otherwise the fingerprint is the identity
    acknowledge: bool = False  # PagerDuty's acknowledge action

    @cached_property
    def fingerprint(self) -> str:
        # Computed once per delivery: the pipeline, the answer and the logs all ask for it.
        return fingerprint(self.labels)

    @property
    def identity(self) -> str:
        """What dedup compares: a PagerDuty dedup_key scoped to its integration, else the fingerprint."""
        if self.dedup_key is not None:
            return f"{self.integration}:{self.dedup_key}"
        return self.fingerprint
