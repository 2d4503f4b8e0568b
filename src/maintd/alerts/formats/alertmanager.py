"""Prometheus Alertmanager's webhook payload (version 4), as Alertmanager sends it.

https://prometheus.io/docs/alerting/latest/configuration/#webhook_config
Unknown fields are accepted: newer Alertmanagers add some (``notification_reason``, ``routeLabels``).
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from maintd.alerts.formats import DELIVERY, Labels, Time
from maintd.alerts.model import AlertIn, AlertStatus, Severity

log = logging.getLogger(__name__)
_SEVERITIES = {s.value: s for s in Severity}


class AlertmanagerAlert(BaseModel):
    model_config = ConfigDict(extra="allow")

    status: AlertStatus
    labels: Annotated[Labels, Field(min_length=1)]
    annotations: dict[str, str] = {}
    startsAt: Time
    endsAt: Time | None = None
    generatorURL: str = ""
    fingerprint: str = ""


class AlertmanagerWebhook(BaseModel):
    model_config = ConfigDict(extra="allow", **DELIVERY)

    version: Literal["4"]
    groupKey: str
    truncatedAlerts: int = 0
    status: AlertStatus
    receiver: str
    groupLabels: dict[str, str] = {}
    commonLabels: dict[str, str] = {}
    commonAnnotations: dict[str, str] = {}
    externalURL: str = ""
    alerts: Annotated[list[AlertmanagerAlert], Field(min_length=1)]


def _time(value: datetime | None) -> datetime | None:
    # Go's zero time.Time, "0001-01-01T00:00:00Z", means "not set".
    return None if value is None or value.year == 1 else value


def to_alerts(webhook: AlertmanagerWebhook, *, integration: str) -> list[AlertIn]:
    out = []
    for a in webhook.alerts:
        annotations = dict(a.annotations)
        if a.generatorURL:
            annotations.setdefault("generator_url", a.generatorURL)
        out.append(
            AlertIn(
                source="alertmanager",
                integration=integration,
                labels=a.labels,
                annotations=annotations,
                status=a.status,
                severity=_SEVERITIES.get(a.labels.get("severity", ""), Severity.error),
                summary=a.annotations.get("summary")
                or a.annotations.get("description")
                or a.labels.get("alertname", ""),
                starts_at=_time(a.startsAt),
                # A firing alert's endsAt is only Alertmanager's guess of when it goes stale.
                ends_at=_time(a.endsAt) if a.status is AlertStatus.resolved else None,
            )
        )
    return out


def warn_of_oddities(webhook: AlertmanagerWebhook, alerts: list[AlertIn], integration: str) -> None:
    """Log what the webhook sent that maintd takes but an operator should hear of: a fingerprint
    other than the one computed from the labels, and alerts Alertmanager left out of the group."""
    for sent, ours in zip(webhook.alerts, alerts, strict=True):
        if sent.fingerprint and sent.fingerprint != ours.fingerprint:
            log.warning(
                "alertmanager %s: fingerprint %s sent, %s from the labels",
                integration,
                sent.fingerprint,
                ours.fingerprint,
            )
    if webhook.truncatedAlerts:
        log.warning("alertmanager %s: %d alerts left out", integration, webhook.truncatedAlerts)
