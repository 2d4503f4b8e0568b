"""maintd.alerts.fingerprint: Alertmanager's alert id. tests/test_alertmanager.py checks it against a
running Alertmanager; these pin the edge cases that test does not send."""

from __future__ import annotations

import pytest

from maintd.alerts.fingerprint import fingerprint


def test_no_labels_is_fnv_1a_s_offset_basis():
    # prometheus/common: LabelSet{}.Fingerprint() hashes nothing (emptyLabelSignature = hashNew()).
    assert fingerprint({}) == "cbf29ce484222325"


@pytest.mark.parametrize(
    ("labels", "expected"),
    [
        ({"alertname": "DiskFull"}, "744e61ca074bea90"),
        ({"alertname": "DiskFull", "instance": "db1:9100", "severity": "critical"}, "efb0c6c488e007da"),
        ({"a": ""}, "e57e2e1903df23e2"),  # an empty value still adds its separator
        ({"é": "ü☃"}, "a863273478ffb249"),  # UTF-8 bytes, as Go hashes a string
    ],
)
def test_known_fingerprints(labels: dict[str, str], expected: str):
    assert fingerprint(labels) == expected


def test_the_order_labels_arrive_in_does_not_matter():
    labels = {"severity": "critical", "alertname": "DiskFull", "instance": "db1:9100"}
    assert fingerprint(labels) == fingerprint(dict(sorted(labels.items()))) == "efb0c6c488e007da"


def test_a_label_boundary_moved_is_another_alert():
    # The separator byte keeps {"ab": "c"} and {"a": "bc"} apart.
    assert fingerprint({"ab": "c"}) != fingerprint({"a": "bc"})
