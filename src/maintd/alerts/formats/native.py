"""maintd's own format: ``POST /api/v1/alerts`` takes a JSON list of these; unknown fields are refused."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, RootModel

from maintd.alerts.formats import DELIVERY, AwareTime, Labels
from maintd.alerts.model import AlertIn, AlertStatus, Severity

MAX_ALERTS = 1000


class NativeAlert(BaseModel):
    """One alert. Its labels are its identity: the same labels again update the same alert."""

    model_config = ConfigDict(extra="forbid")

    labels: Annotated[Labels, Field(min_length=1, description="identity; `alertname` names it")]
    annotations: dict[str, str] = Field(default={}, description="free text: description, runbook, ...")
    status: AlertStatus = Field(default=AlertStatus.firing, description="`resolved` closes the alert")
    severity: Severity = Field(default=Severity.error, description="critical, error, warning, info")
    summary: str = Field(default="", max_length=1024, description="one line; default: `alertname`")
    starts_at: AwareTime | None = Field(default=None, description="default: when received")
    ends_at: AwareTime | None = Field(default=None, description="when it resolved")


class NativeAlerts(RootModel[list[NativeAlert]]):
    model_config = DELIVERY

    root: Annotated[list[NativeAlert], Field(min_length=1, max_length=MAX_ALERTS)]


def to_alerts(batch: NativeAlerts, *, integration: str | None) -> list[AlertIn]:
    return [
        AlertIn(
            source="native",
            integration=integration,
            labels=a.labels,
            annotations=a.annotations,
            status=a.status,
            severity=a.severity,
            summary=a.summary,
            starts_at=a.starts_at,
            ends_at=a.ends_at if a.status is AlertStatus.resolved else None,
        )
        for a in batch.root
    ]
