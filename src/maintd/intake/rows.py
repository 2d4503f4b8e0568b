"""A row of ``maintd intake``'s journal as the alerts its route would have made (for the drain)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TypeVar

from pydantic import BaseModel

from maintd.alerts import admission
from maintd.alerts.formats import alertmanager, native, pagerduty
from maintd.alerts.formats.alertmanager import AlertmanagerWebhook
from maintd.alerts.formats.native import NativeAlerts
from maintd.alerts.formats.pagerduty import PagerDutyEvent
from maintd.alerts.model import AlertIn
from maintd.incidents.committer import AlertRequest

M = TypeVar("M", bound=BaseModel)


class BadRow(Exception):
    """A journaled body that cannot become alerts: no transaction will ever store it."""


@dataclass(frozen=True)
class Journaled:
    """One ``alert_intake`` row as the drain reads it."""

    id: int
    source: str
    actor: str
    integration: str | None
    dedup_key: str | None
    body: bytes
    received_at: datetime


def to_request(row: Journaled) -> AlertRequest:
    """The row's alerts, as its route would have made them; BadRow if they cannot be made."""
    parse = _PARSERS.get(row.source)
    if parse is None:
        raise BadRow(f"unknown source {row.source!r}")
    try:
        return AlertRequest(parse(row), row.actor, row.received_at)
    except admission.Rejected as rejected:
        raise BadRow(f"{row.source} body not valid: {rejected.detail}") from None


def _document(model: type[M], body: bytes) -> M:
    # The intake's and the routes' own rules (maintd.alerts.admission), so the same body passes.
    return admission.read(model, body)


def _native(row: Journaled) -> Sequence[AlertIn]:
    return native.to_alerts(_document(NativeAlerts, row.body), integration=row.integration)


def _alertmanager(row: Journaled) -> Sequence[AlertIn]:
    if row.integration is None:
        raise BadRow("an alertmanager row names no integration")
    webhook = _document(AlertmanagerWebhook, row.body)
    alerts = alertmanager.to_alerts(webhook, integration=row.integration)
    alertmanager.warn_of_oddities(webhook, alerts, row.integration)
    return alerts


def _pagerduty(row: Journaled) -> Sequence[AlertIn]:
    if row.integration is None or row.dedup_key is None:
        raise BadRow("a pagerduty row needs its integration and the dedup_key answered")
    event = _document(PagerDutyEvent, row.body)
    return [pagerduty.to_alert(event, integration=row.integration, dedup_key=row.dedup_key)]


_PARSERS: dict[str, Callable[[Journaled], Sequence[AlertIn]]] = {
    "native": _native,
    "alertmanager": _alertmanager,
    "pagerduty": _pagerduty,
}
