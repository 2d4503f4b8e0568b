"""maintd.alerts.admission.read: one pass for a good body, and the very answer of the two
steps (json.loads, then validation) for every other, so both doors keep their refusals."""

from __future__ import annotations

import json

import pytest
from pydantic import BaseModel

from maintd.alerts import admission
from maintd.alerts.formats.alertmanager import AlertmanagerWebhook
from maintd.alerts.formats.native import NativeAlerts
from maintd.alerts.formats.pagerduty import PagerDutyEvent
from tests import test_alertmanager, test_pagerduty

NATIVE = '[{"labels": {"alertname": "Disk", "job": "x"}, "severity": "warning"}]'
WEBHOOK = json.dumps(test_alertmanager.webhook(test_alertmanager.DISK_A))
EVENT = json.dumps({**test_pagerduty.EXAMPLE, "routing_key": "0123456789abcdef0123456789abcdef"})


def odd_bodies(good: str) -> dict[str, bytes]:
    """Bodies where JSON parsers are known to differ, and plain bad ones."""
    inner = good[1:-1] if good.startswith("[") else good
    return {
        "good": good.encode(),
        "byte order mark": b"\xef\xbb\xbf" + good.encode(),
        "UTF-16": good.encode("utf-16"),
        "UTF-16-LE": good.encode("utf-16-le"),
        "trailing whitespace": good.encode() + b" \n",
        "trailing garbage": good.encode() + b" x",
        "duplicate keys": ("[" + inner[:-1] + ', "labels": {"alertname": "Other"}}]').encode(),
        "lone surrogate": b'[{"labels": {"alertname": "A\\ud800"}, "severity": "warning"}]',
        "invalid UTF-8": b'[{"labels": {"alertname": "A\xff"}, "severity": "warning"}]',
        "overlong UTF-8": b'[{"labels": {"alertname": "\xc0\xaf"}, "severity": "warning"}]',
        "raw control character": b'[{"labels": {"alertname": "A\x01"}, "severity": "warning"}]',
        "escaped NUL": b'[{"labels": {"alertname": "A\\u0000"}, "severity": "warning"}]',
        "NaN": b'[{"labels": {"alertname": "A"}, "severity": "warning", "x": NaN}]',
        "huge integer": b'{"a": 1' + b"0" * 5000 + b"}",
        "deep nesting": b"[" * 5000 + b"]" * 5000,
        "empty": b"",
        "not an object": b'"text"',
        "wrong types": b'{"alerts": 5, "routing_key": 7, "labels": []}',
    }


def two_steps(model: type[BaseModel], body: bytes) -> object:
    """What the routes answered before ``read``: the model's dump, or the refusal."""
    try:
        return admission.validate(model, admission.parse_json(body)).model_dump()
    except admission.Rejected as rejected:
        return refusal(rejected)


def one_read(model: type[BaseModel], body: bytes) -> object:
    try:
        return admission.read(model, body).model_dump()
    except admission.Rejected as rejected:
        return refusal(rejected)


def refusal(rejected: admission.Rejected) -> tuple[object, ...]:
    return ("refused", rejected.status, rejected.title, rejected.detail, rejected.errors)


@pytest.mark.parametrize(
    ("model", "good"),
    [(NativeAlerts, NATIVE), (AlertmanagerWebhook, WEBHOOK), (PagerDutyEvent, EVENT)],
    ids=["native", "alertmanager", "pagerduty"],
)
def test_read_answers_every_body_as_parsing_then_validating_does(model: type[BaseModel], good: str):
    for what, body in odd_bodies(good).items():
        for given in (body, bytearray(body)):
            assert one_read(model, given) == two_steps(model, body), what
    assert not isinstance(one_read(model, good.encode()), tuple)  # taken
    assert one_read(model, b"[" * 5000)[:3] == ("refused", 400, "Malformed JSON")


def test_what_only_json_loads_takes_is_still_taken():
    # pydantic's parser refuses these; the second step takes them, as the routes always did.
    for what in ("byte order mark", "UTF-16", "lone surrogate"):
        found = admission.read(NativeAlerts, odd_bodies(NATIVE)[what])
        assert found.root[0].labels["alertname"].startswith("A" if what == "lone surrogate" else "Disk"), what
