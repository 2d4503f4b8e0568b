"""PagerDuty's Events API v2 (``POST /v2/enqueue``), as PagerDuty documents it.

https://developer.pagerduty.com/docs/events-api-v2/trigger-events/ and the schema at
https://github.com/PagerDuty/api-schema/blob/main/reference/events-v2/openapiv3.json
Unknown fields are ignored, as PagerDuty does.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from enum import StrEnum
from typing import Annotated, Any, Self

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from maintd.alerts.formats import DELIVERY, LabelValue, Time, no_control_characters
from maintd.alerts.model import AlertIn, AlertStatus, Severity

MAX_BODY = 512 * 1024  # PagerDuty's documented limit for one event
SUMMARY_MAX = 1024  # PagerDuty truncates longer summaries
_IDENTITY_MAX = 255  # AlertRow.dedup_key


DedupKey = Annotated[str, Field(min_length=1, max_length=255), AfterValidator(no_control_characters)]


class EventAction(StrEnum):
    trigger = "trigger"
    acknowledge = "acknowledge"
    resolve = "resolve"


class PagerDutyPayload(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    summary: Annotated[str, Field(min_length=1)]
    source: Annotated[str, Field(min_length=1), AfterValidator(no_control_characters)]
    severity: Severity
    timestamp: Time | None = None
    component: LabelValue | None = None
    group: LabelValue | None = None
    class_: LabelValue | None = Field(default=None, alias="class")
    custom_details: Any = None


class PagerDutyLink(BaseModel):
    href: str
    text: str = ""


class PagerDutyImage(BaseModel):
    src: str
    href: str = ""
    alt: str = ""


class PagerDutyEvent(BaseModel):
    model_config = ConfigDict(extra="ignore", **DELIVERY)

    routing_key: Annotated[str, Field(min_length=1)]
    event_action: EventAction
    dedup_key: DedupKey | None = None
    payload: PagerDutyPayload | None = None
    images: list[PagerDutyImage] = []
    links: list[PagerDutyLink] = []
    client: str | None = None
    client_url: str | None = None

    @model_validator(mode="after")
    def _required_per_action(self) -> Self:
        if self.event_action is EventAction.trigger and self.payload is None:
            raise ValueError("payload is required for a trigger event")
        if self.event_action is not EventAction.trigger and self.dedup_key is None:
            raise ValueError(f"dedup_key is required to {self.event_action} an alert")
        return self


def dedup_key_of(event: PagerDutyEvent) -> str:
    """The event's dedup_key; a trigger without one gets a new one (returned to the sender)."""
    return event.dedup_key or uuid.uuid4().hex


def to_alert(event: PagerDutyEvent, *, integration: str, dedup_key: str) -> AlertIn:
    labels = {"dedup_key": dedup_key}
    annotations: dict[str, str] = {}
    summary = ""
    severity = Severity.error
    starts_at = None
    p = event.payload
    if p is not None:
        severity = p.severity
        summary = p.summary[:SUMMARY_MAX]
        starts_at = p.timestamp
        # alertname and target make PagerDuty events group like other alerts (plan incidents.group_by).
        labels |= {"alertname": p.class_ or "pagerduty", "target": p.source, "source": p.source}
        labels |= {"severity": p.severity.value}
        optional = {"component": p.component, "group": p.group, "class": p.class_}
        labels |= {k: v for k, v in optional.items() if v}
        if p.custom_details is not None:
            annotations["custom_details"] = json.dumps(p.custom_details, sort_keys=True)
    if event.client:
        annotations["client"] = event.client
    if event.client_url:
        annotations["client_url"] = event.client_url
    if event.links:
        annotations["links"] = json.dumps([link.model_dump() for link in event.links])
    if event.images:
        annotations["images"] = json.dumps([image.model_dump() for image in event.images])
    return AlertIn(
        source="pagerduty",
        integration=integration,
        labels=labels,
        annotations=annotations,
        status=AlertStatus.resolved if event.event_action is EventAction.resolve else AlertStatus.firing,
        severity=severity,
        summary=summary,
        starts_at=starts_at if event.event_action is EventAction.trigger else None,
        dedup_key=_stored_key(integration, dedup_key),
        acknowledge=event.event_action is EventAction.acknowledge,
    )


def _stored_key(integration: str, dedup_key: str) -> str:
    """The key as the alert's identity stores it: ``integration:key`` must fit 255 characters."""
    if len(integration) + 1 + len(dedup_key) <= _IDENTITY_MAX:
        return dedup_key
    return "sha256:" + hashlib.sha256(dedup_key.encode()).hexdigest()
